/**
 * The proxy's one outbound HTTP peer: an undici Agent that pools keep-alive connections per
 * upstream address. The proxy resolves names itself (policy needs the address), so requests go to
 * `http://<ip>:<port>` with the original Host header.
 */
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher, errors } from 'undici';
import { formatAuthority } from '../http/target.js';

export interface UpstreamOptions {
  connectTimeoutMs: number;
  /** Longest wait for response headers, and longest pause between body chunks. */
  idleBodyTimeoutMs: number;
  keepAliveTimeoutMs: number;
  connectionsPerOrigin: number;
  maxResponseHeaderSize: number;
}

export interface UpstreamRequest {
  ip: string;
  port: number;
  method: string;
  path: string;
  headers: Record<string, string | string[]>;
  body?: Buffer | Readable;
}

/** Why an upstream exchange failed, in terms a block page can explain. */
export class UpstreamError extends Error {
  override name = 'UpstreamError';
  constructor(
    message: string,
    readonly status: 502 | 504,
    readonly kind: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export function describeUpstreamError(
  err: unknown,
  where: string,
  timeouts: { connectMs: number; idleMs: number },
): UpstreamError {
  if (err instanceof UpstreamError) return err;
  const code = (err as { code?: string }).code ?? '';
  const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
  if (
    err instanceof errors.ConnectTimeoutError ||
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'ETIMEDOUT'
  ) {
    return new UpstreamError(
      `Connecting to ${where} timed out after ${seconds(timeouts.connectMs)}.`,
      504,
      'connect-timeout',
      { cause: err },
    );
  }
  if (err instanceof errors.HeadersTimeoutError) {
    return new UpstreamError(
      `${where} accepted the connection but sent no response within ${seconds(timeouts.idleMs)}.`,
      504,
      'response-timeout',
      { cause: err },
    );
  }
  if (err instanceof errors.BodyTimeoutError) {
    return new UpstreamError(
      `${where} stopped sending the response for ${seconds(timeouts.idleMs)}.`,
      504,
      'body-timeout',
      { cause: err },
    );
  }
  if (code === 'ECONNREFUSED')
    return new UpstreamError(
      `${where} refused the connection (nothing listens on that port).`,
      502,
      'refused',
      { cause: err },
    );
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
    return new UpstreamError(`There is no route from the gateway to ${where}.`, 502, 'unreachable', {
      cause: err,
    });
  }
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') {
    return new UpstreamError(`${where} closed the connection before a complete response.`, 502, 'reset', {
      cause: err,
    });
  }
  if (
    code.startsWith('HPE_') ||
    // a head Node will not forward (a character no HTTP field value may hold)
    code === 'ERR_INVALID_CHAR' ||
    code === 'ERR_HTTP_INVALID_HEADER_VALUE' ||
    code === 'ERR_INVALID_HTTP_TOKEN' ||
    err instanceof errors.ResponseExceededMaxSizeError ||
    code === 'UND_ERR_HEADERS_OVERFLOW'
  ) {
    return new UpstreamError(`${where} sent an invalid HTTP response.`, 502, 'bad-response', { cause: err });
  }
  return new UpstreamError(`The request to ${where} failed: ${(err as Error).message}`, 502, 'other', {
    cause: err,
  });
}

export class Upstream {
  private readonly agent: Agent;

  constructor(private readonly options: UpstreamOptions) {
    this.agent = new Agent({
      connect: { timeout: options.connectTimeoutMs },
      connections: options.connectionsPerOrigin,
      ...this.clientOptions(),
    });
  }

  /** Timeouts and limits every upstream exchange has (also the bumped connections' own clients). */
  clientOptions() {
    const { options } = this;
    return {
      keepAliveTimeout: options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: options.keepAliveTimeoutMs,
      headersTimeout: options.idleBodyTimeoutMs,
      bodyTimeout: options.idleBodyTimeoutMs,
      maxHeaderSize: options.maxResponseHeaderSize,
      pipelining: 1,
    };
  }

  /**
   * Sends the request; `handler` sees the response as undici parses it (head, body chunks, end) and
   * gets every failure through onResponseError, described with upstreamFailure(). `via`: a dispatcher
   * of the request's own (a bumped connection's validated TLS upstream) instead of the shared pool.
   */
  dispatch(req: UpstreamRequest, handler: Dispatcher.DispatchHandler, via?: Dispatcher): void {
    (via ?? this.agent).dispatch(
      {
        origin: `http://${formatAuthority(req.ip, req.port)}`,
        path: req.path,
        method: req.method as Dispatcher.HttpMethod,
        headers: req.headers,
        body: req.body ?? null,
      },
      handler,
    );
  }

  /** A failure of an exchange with `ip`:`port`, in terms a block page can explain. */
  upstreamFailure(err: unknown, ip: string, port: number): UpstreamError {
    return describeUpstreamError(err, formatAuthority(ip, port), {
      connectMs: this.options.connectTimeoutMs,
      idleMs: this.options.idleBodyTimeoutMs,
    });
  }

  /** Closes pooled connections once their requests finish. */
  async close(): Promise<void> {
    await this.agent.close();
  }
}
