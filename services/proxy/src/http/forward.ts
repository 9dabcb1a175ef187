/**
 * One forwarded HTTP request, explicit or intercepted: target → checks → decision → upstream →
 * response checks → streamed response. Every request is one trace (server span, policy.decide,
 * upstream client span); every request ends as one recorded transaction.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { attr } from '@moat/telemetry';
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { fileTypeFromBuffer } from 'file-type';
import { startSpan } from '../observe/tracer.js';
import { type ProxyMode, startTransaction, type Transaction } from '../observe/transaction.js';
import {
  annotate,
  type Decision,
  decideAndRecord,
  HostForgeryError,
  type OriginalDestination,
  type ProxyDeps,
  type Resolution,
  resolveFlow,
} from '../pipeline.js';
import type { ContentFilter } from '../policy/compile.js';
import {
  dispositionFileName,
  filterRequest,
  filterResponse,
  mediaType,
  type Verdict,
} from '../policy/decide.js';
import { describeUpstreamError, UpstreamError, type UpstreamResponse } from '../upstream/upstream.js';
import { renderVerdictPage } from './block-page.js';
import { endToEndHeaders, headerValue, isForwardingLoop, withVia } from './headers.js';
import {
  BadTargetError,
  formatAuthority,
  parseAbsoluteTarget,
  parseInterceptedTarget,
  redactedUrl,
  type Target,
} from './target.js';

/** Request bodies up to this size are read completely before anything is sent upstream. */
const BUFFERED_BODY_LIMIT = 64 * 1024;
/** Bytes file-type needs to recognise a format. */
const SNIFF_BYTES = 4100;

/** A refusal the proxy makes itself (not a policy block): bad request, loop, forgery, upstream failure. */
function proxyVerdict(status: number, tag: string, reason: string): Verdict {
  return { action: 'block', engine: 'firewall', status, tag, reason };
}

interface Exchange {
  deps: ProxyDeps;
  req: IncomingMessage;
  res: ServerResponse;
  span: Span;
  tx: Transaction;
  /** Stops the upstream side: the client left, or the transaction ran out of time. */
  abort: AbortController;
  timedOut: boolean;
}

export function handleForward(
  deps: ProxyDeps,
  req: IncomingMessage,
  res: ServerResponse,
  mode: Extract<ProxyMode, 'explicit' | 'transparent'>,
  original?: OriginalDestination,
): void {
  const method = req.method ?? 'GET';
  const span = startSpan(method, {
    kind: SpanKind.SERVER,
    attributes: {
      'http.request.method': method,
      [attr.proxyMode]: mode,
      'network.protocol.version': req.httpVersion,
    },
  });
  const tx = startTransaction(mode, method, req.url ?? '', req.socket, span.spanContext().traceId);
  const exchange: Exchange = { deps, req, res, span, tx, abort: new AbortController(), timedOut: false };
  res.once('close', () => {
    if (!res.writableFinished) exchange.abort.abort(); // the client left: stop the upstream transfer too
  });
  limitTotalTime(exchange);
  forward(exchange, mode, original)
    .catch((err: unknown) => {
      // a bug, not a policy outcome: answer if we still can, and keep the process alive
      deps.log.error({ err, url: tx.url, trace_id: tx.traceId }, 'request handling failed');
      tx.error = (err as Error).message;
      if (!res.headersSent)
        sendPage(exchange, proxyVerdict(500, 'WEBFILTER_ERROR', 'The proxy failed to handle this request.'));
      else res.destroy();
    })
    .finally(() => finish(exchange));
}

function totalTimeout(deps: ProxyDeps): UpstreamError {
  return new UpstreamError(
    `The request took longer than the proxy's limit of ${Math.round(deps.config.requestTimeout / 1000)} s.`,
    504,
    'total-timeout',
  );
}

/** The whole transaction's deadline (MOAT_PROXY_REQUEST_TIMEOUT; 0 = none, for large downloads). */
function limitTotalTime(ex: Exchange): void {
  const limit = ex.deps.config.requestTimeout;
  if (limit <= 0) return;
  const timer = setTimeout(() => {
    ex.timedOut = true;
    ex.deps.metrics.upstreamErrors.inc({ kind: 'total-timeout' });
    ex.tx.error = totalTimeout(ex.deps).message;
    ex.abort.abort();
    // before the response started, the relay answers 504; after, the cut itself is the signal
    if (ex.res.headersSent) ex.res.destroy();
  }, limit);
  timer.unref();
  ex.res.once('close', () => clearTimeout(timer));
}

function finish({ deps, span, tx, res }: Exchange): void {
  const done = () => {
    span.setAttribute('http.response.status_code', tx.status);
    annotate(span, tx.verdict);
    if (tx.verdict.action === 'block' || tx.status >= 500) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: tx.verdict.reason });
    }
    span.end();
    deps.recorder.record(tx);
  };
  if (res.writableFinished || res.destroyed) done();
  else res.once('close', done);
}

async function forward(
  ex: Exchange,
  mode: 'explicit' | 'transparent',
  original?: OriginalDestination,
): Promise<void> {
  const { deps, req, span, tx } = ex;
  if (req.httpVersionMajor !== 1) {
    deps.metrics.badRequests.inc({ reason: 'version' });
    return sendPage(
      ex,
      proxyVerdict(
        400,
        'WEBFILTER_BAD_REQUEST',
        `HTTP/${req.httpVersion} requests are not supported; use HTTP/1.0 or 1.1.`,
      ),
    );
  }
  let target: Target;
  try {
    target =
      mode === 'explicit'
        ? parseAbsoluteTarget(req.url ?? '')
        : parseInterceptedTarget(req.url ?? '', req.headers.host, original?.port ?? 80);
  } catch (err) {
    if (!(err instanceof BadTargetError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'target' });
    return sendPage(
      ex,
      proxyVerdict(400, 'WEBFILTER_BAD_REQUEST', `The request target is invalid: ${err.message}.`),
    );
  }
  tx.url = redactedUrl(target);
  tx.server = { host: target.host, port: target.port };
  span.setAttributes({ 'url.full': tx.url, 'server.address': target.host, 'server.port': target.port });
  span.updateName(`${req.method} ${target.scheme}://${target.host}`);

  if (isForwardingLoop(req.headers.via, deps.config.visibleHostname)) {
    deps.metrics.badRequests.inc({ reason: 'loop' });
    return sendPage(
      ex,
      proxyVerdict(508, 'WEBFILTER_LOOP', 'The request came back through this proxy: a forwarding loop.'),
    );
  }

  let resolution: Resolution;
  try {
    const pending = resolveFlow(deps, target, tx.client, original);
    resolution = pending instanceof Promise ? await pending : pending;
  } catch (err) {
    if (!(err instanceof HostForgeryError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'host-forgery' });
    return sendPage(ex, proxyVerdict(409, 'WEBFILTER_HOST_FORGERY', err.message));
  }
  const { flow, dnsError } = resolution;
  const decision = decideAndRecord(deps, tx, flow, target, 'http', span);
  if (decision.verdict.action === 'block') return sendPage(ex, decision.verdict, target);
  if (dnsError) {
    deps.metrics.upstreamErrors.inc({ kind: 'dns' });
    return sendUpstreamError(ex, new UpstreamError(`${dnsError.message}.`, 502, 'dns'), target);
  }

  const contentFilter = decision.inspection?.contentFilter;
  const contentLength = parseContentLength(req.headers['content-length']);
  if (contentFilter) {
    const blocked = filterRequest(contentFilter, target, contentLength);
    if (blocked) return sendPage(ex, withContext(blocked, decision), target);
  }
  await relay(ex, target, flow.serverIp, decision, contentFilter);
}

/** Carries the rule and UTM policy of the decision over to a later content verdict. */
function withContext(verdict: Verdict, decision: Decision): Verdict {
  return {
    ...verdict,
    ...(decision.verdict.rule ? { rule: decision.verdict.rule } : {}),
    ...(decision.verdict.utmPolicy ? { utmPolicy: decision.verdict.utmPolicy } : {}),
  };
}

function parseContentLength(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

function bodyTooLarge(filter: ContentFilter, decision: Decision): Verdict {
  return withContext(
    {
      action: 'block',
      engine: 'content-filter',
      tag: 'CONTENT_FILTERING_BLOCKED',
      status: 413,
      profile: filter.profile,
      reason: `The request body exceeds the limit of ${filter.maxRequestBodySize} bytes.`,
    },
    decision,
  );
}

/**
 * The request body, never trusted further than it was parsed: small bodies are read completely
 * before the upstream is contacted (a malformed chunk then reaches nobody); larger ones stream,
 * and a parse error mid-way aborts the upstream request before its body is complete.
 */
async function readRequestBody(
  req: IncomingMessage,
  limit: number | undefined,
  counted: (n: number) => void,
): Promise<Buffer | Readable> {
  const iterator = req[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  const take = (chunk: Buffer) => {
    size += chunk.length;
    counted(chunk.length);
    if (limit !== undefined && size > limit)
      throw new BodyTooLargeError(`the request body exceeds the limit of ${limit} bytes`);
    return chunk;
  };
  while (size <= BUFFERED_BODY_LIMIT) {
    const next = await iterator.next();
    if (next.done) return Buffer.concat(chunks);
    chunks.push(take(next.value as Buffer));
  }
  async function* rest() {
    yield* chunks;
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      yield take(next.value as Buffer);
  }
  return Readable.from(rest(), { objectMode: false });
}

async function relay(
  ex: Exchange,
  target: Target,
  serverIp: string,
  decision: Decision,
  contentFilter: ContentFilter | undefined,
): Promise<void> {
  const { deps, req, res, tx } = ex;
  let body: Buffer | Readable | undefined;
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (parseContentLength(req.headers['content-length']) ?? 0) > 0;
  try {
    if (hasBody) {
      body = await readRequestBody(req, contentFilter?.maxRequestBodySize, (n) => {
        tx.bytesIn += n;
      });
    }
  } catch (err) {
    if (err instanceof BodyTooLargeError && contentFilter)
      return sendPage(ex, bodyTooLarge(contentFilter, decision), target);
    // the client sent a malformed body or went away: nothing was sent upstream
    deps.metrics.badRequests.inc({ reason: 'body' });
    tx.error = `request body: ${(err as Error).message}`;
    res.destroy();
    return;
  }

  const headers = withVia(endToEndHeaders(req.headers), req.httpVersion, deps.config.visibleHostname);
  headers.host = req.headers.host ?? target.host;
  const { abort } = ex;

  let upstream: UpstreamResponse;
  const upstreamSpan = startSpan(
    `${req.method}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': req.method ?? 'GET',
        'server.address': serverIp,
        'server.port': target.port,
        'url.full': tx.url,
      },
    },
    ex.span,
  );
  try {
    upstream = await deps.upstream.request({
      ip: serverIp,
      port: target.port,
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      ...(body ? { body } : {}),
      signal: abort.signal,
    });
    upstreamSpan.setAttribute('http.response.status_code', upstream.statusCode);
  } catch (err) {
    upstreamSpan.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    upstreamSpan.end();
    if (ex.timedOut) return sendUpstreamError(ex, totalTimeout(deps), target);
    if (abort.signal.aborted) {
      tx.error = 'client closed the connection';
      return;
    }
    const cause = err instanceof UpstreamError ? err.cause : err;
    if (cause instanceof BodyTooLargeError && contentFilter) {
      return sendPage(ex, bodyTooLarge(contentFilter, decision), target);
    }
    if (req.errored) {
      // the client's body was malformed mid-stream: the upstream got an incomplete request, never a whole one
      deps.metrics.badRequests.inc({ reason: 'body' });
      tx.error = `request body: ${req.errored.message}`;
      res.destroy();
      return;
    }
    if (err instanceof UpstreamError) {
      deps.metrics.upstreamErrors.inc({ kind: err.kind });
      return sendUpstreamError(ex, err, target);
    }
    throw err;
  }

  try {
    await respond(ex, target, upstream, decision, contentFilter);
    upstreamSpan.end();
  } catch (err) {
    upstreamSpan.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    upstreamSpan.end();
    throw err;
  }
}

/**
 * The first chunk of a body, for sniffing, put back so that delivery still starts with it. One
 * chunk (usually 16-64 KiB, or the whole of a small response) holds the magic bytes of every format
 * file-type knows; waiting for more would stall slow streams.
 */
function firstChunk(body: Readable): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      body.off('readable', onReadable);
      body.off('end', onEnd);
      body.off('error', onError);
    };
    const onReadable = () => {
      const chunk = body.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      body.unshift(chunk);
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(undefined);
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    body.on('readable', onReadable);
    body.once('end', onEnd);
    body.once('error', onError);
  });
}

async function respond(
  ex: Exchange,
  target: Target,
  upstream: UpstreamResponse,
  decision: Decision,
  contentFilter: ContentFilter | undefined,
): Promise<void> {
  const { deps, req, res, tx } = ex;
  const declaredType = mediaType(headerValue(upstream.headers['content-type']));
  if (declaredType) tx.contentType = declaredType;
  const contentLength = parseContentLength(headerValue(upstream.headers['content-length']));
  const body: Readable = upstream.body;

  if (contentFilter) {
    const fileName = dispositionFileName(headerValue(upstream.headers['content-disposition']));
    const facts = {
      ...(declaredType ? { declaredType } : {}),
      ...(fileName ? { fileName } : {}),
      ...(contentLength !== undefined ? { contentLength } : {}),
    };
    let blocked = filterResponse(contentFilter, facts);
    if (
      !blocked &&
      contentFilter.blockMimeTypes.length + contentFilter.blockExtensions.size > 0 &&
      req.method !== 'HEAD'
    ) {
      let head: Buffer | undefined;
      try {
        head = await firstChunk(body);
      } catch (err) {
        const failure = describeUpstreamError(
          err,
          formatAuthority(tx.server.ip ?? target.host, target.port),
          {
            connectMs: deps.config.connectTimeout,
            idleMs: deps.config.upstreamIdleBodyTimeout,
          },
        );
        deps.metrics.upstreamErrors.inc({ kind: failure.kind });
        return sendUpstreamError(ex, failure, target);
      }
      const sniffed = head?.length ? await fileTypeFromBuffer(head.subarray(0, SNIFF_BYTES)) : undefined;
      if (sniffed)
        blocked = filterResponse(contentFilter, {
          ...facts,
          sniffed: { mime: sniffed.mime, ext: sniffed.ext },
        });
    }
    if (blocked) {
      upstream.body.destroy();
      return sendPage(ex, withContext(blocked, decision), target);
    }
  }

  const headers = withVia(
    endToEndHeaders(upstream.headers as Record<string, string | string[]>),
    '1.1',
    deps.config.visibleHostname,
  );
  if (contentLength !== undefined) headers['content-length'] = String(contentLength);
  // the id that finds this request's trace, for the user's support ticket and for debugging
  if (tx.traceId) headers['x-moat-trace-id'] = tx.traceId;
  tx.status = upstream.statusCode;
  res.writeHead(upstream.statusCode, headers);

  await deliver(ex, body, contentFilter?.maxResponseBodySize, decision);
}

/**
 * Streams the upstream body to the client with back-pressure (pipe), counting bytes and cutting the
 * transfer when it grows past the profile's limit. No stream.pipeline here: it allocates an
 * AbortController (and a DOMException on completion) per response, a measurable cost per request.
 */
function deliver(ex: Exchange, body: Readable, limit: number | undefined, decision: Decision): Promise<void> {
  const { res, tx } = ex;
  return new Promise((resolve) => {
    let done = false;
    const end = (error?: string) => {
      if (done) return;
      done = true;
      if (error) {
        tx.error ??= error;
        body.unpipe(res);
        body.destroy();
        res.destroy();
      }
      resolve();
    };
    body.on('data', (chunk: Buffer) => {
      tx.bytesOut += chunk.length;
      if (limit !== undefined && tx.bytesOut > limit) {
        // headers are out: the only honest signal left is an incomplete response
        tx.verdict = withContext(
          {
            action: 'block',
            engine: 'content-filter',
            tag: 'CONTENT_FILTERING_BLOCKED',
            status: tx.status,
            profile: decision.inspection?.contentFilter?.profile ?? '',
            reason: `The response exceeded the limit of ${limit} bytes and was cut off.`,
          },
          decision,
        );
        annotate(ex.span, tx.verdict);
        end('response body over the configured limit');
      }
    });
    body.once('error', (err) => end(`response: ${err.message}`));
    res.once('finish', () => end());
    res.once('close', () => end(res.writableFinished ? undefined : 'client closed the connection'));
    body.pipe(res);
  });
}

function sendPage(ex: Exchange, verdict: Verdict, target?: Target): void {
  const { deps, req, res, span, tx } = ex;
  tx.verdict = verdict;
  tx.status = verdict.status;
  annotate(span, verdict);
  const { body, headers } = renderVerdictPage(
    verdict,
    {
      title: verdict.status === 403 || verdict.status === 413 ? 'Access blocked' : titleFor(verdict.status),
      ...(target ? { url: tx.url } : {}),
      ...(tx.traceId ? { traceId: tx.traceId } : {}),
      proxyName: deps.config.visibleHostname,
    },
    req.headers.accept,
  );
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(verdict.status, {
    ...headers,
    'content-length': Buffer.byteLength(body),
    ...(verdict.status === 400 || verdict.status === 431 ? { connection: 'close' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendUpstreamError(ex: Exchange, err: UpstreamError, target: Target): void {
  ex.tx.error = err.message;
  sendPage(
    ex,
    {
      ...ex.tx.verdict,
      status: err.status,
      reason: err.message,
      tag: 'WEBFILTER_UPSTREAM_ERROR',
    },
    target,
  );
  // the decision allowed it; the failure is the upstream's, not a block
  ex.tx.verdict = { ...ex.tx.verdict, action: 'allow' };
}

function titleFor(status: number): string {
  switch (status) {
    case 400:
      return 'Bad request';
    case 409:
      return 'Request refused: host does not match destination';
    case 431:
      return 'Request header fields too large';
    case 502:
      return 'The server could not be reached';
    case 503:
      return 'Service unavailable';
    case 504:
      return 'The server did not answer in time';
    case 508:
      return 'Forwarding loop';
    default:
      return `Error ${status}`;
  }
}
