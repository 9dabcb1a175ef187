/**
 * One forwarded HTTP request, explicit or intercepted: target → checks → decision → upstream →
 * response checks (response-relay.ts) → response streamed to the client. Every request is one trace
 * (server span, policy.decide, upstream client span) and ends as one recorded transaction.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { attr } from '@moat/telemetry';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import { wantsScan } from '../antivirus/stage.js';
import { startSpan } from '../observe/tracer.js';
import { type ProxyMode, startTransaction } from '../observe/transaction.js';
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
import { filterRequest, mediaType, type Verdict } from '../policy/decide.js';
import type { BumpedTunnel } from '../tls/bump.js';
import { UpstreamError } from '../upstream/upstream.js';
import {
  type Exchange,
  proxyVerdict,
  sendPage,
  sendUpstreamError,
  totalTimeout,
  withContext,
} from './exchange.js';
import { endToEndHeaders, isForwardingLoop, withVia } from './headers.js';
import { BodyTooLargeError, ResponseRelay } from './response-relay.js';
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

class ClientGoneError extends Error {
  override name = 'ClientGoneError';
}

export function handleForward(
  deps: ProxyDeps,
  req: IncomingMessage,
  res: ServerResponse,
  mode: Extract<ProxyMode, 'explicit' | 'transparent' | 'bumped'>,
  original?: OriginalDestination,
  tunnel?: BumpedTunnel,
): void {
  const method = req.method ?? 'GET';
  // a decrypted request belongs to its connection's trace, beside the bump decision and the certificate
  const span = startSpan(
    method,
    {
      kind: SpanKind.SERVER,
      attributes: {
        'http.request.method': method,
        [attr.proxyMode]: mode,
        'network.protocol.version': req.httpVersion,
      },
    },
    tunnel?.span,
  );
  const tx = startTransaction(mode, method, req.url ?? '', req.socket, span.spanContext().traceId);
  const ex: Exchange = { deps, req, res, span, tx, closed: false, timedOut: false };
  const timer = limitTotalTime(ex);
  // One listener ends the transaction: the response finished, or the client left before it did.
  res.once('close', () => {
    ex.closed = true;
    if (timer) clearTimeout(timer);
    if (!res.writableFinished) {
      tx.error ??= 'client closed the connection';
      ex.stopUpstream?.(new ClientGoneError('client closed the connection'));
    }
    record(ex);
  });
  forward(ex, mode, original, tunnel).catch((err: unknown) => {
    // a bug, not a policy outcome: answer if we still can, and keep the process alive
    deps.log.error({ err, url: tx.url, trace_id: tx.traceId }, 'request handling failed');
    tx.error = (err as Error).message;
    if (!res.headersSent && !ex.closed)
      sendPage(ex, proxyVerdict(500, 'WEBFILTER_ERROR', 'The proxy failed to handle this request.'));
    else res.destroy();
  });
}

/** The whole transaction's deadline (MOAT_PROXY_REQUEST_TIMEOUT; 0 = none, for large downloads). */
function limitTotalTime(ex: Exchange): NodeJS.Timeout | undefined {
  const limit = ex.deps.config.requestTimeout;
  if (limit <= 0) return undefined;
  const timer = setTimeout(() => {
    ex.timedOut = true;
    ex.deps.metrics.upstreamErrors.inc({ kind: 'total-timeout' });
    ex.tx.error = totalTimeout(ex.deps).message;
    // before the response started, the relay answers 504; after, the cut itself is the signal
    if (ex.stopUpstream) ex.stopUpstream(totalTimeout(ex.deps));
    if (ex.res.headersSent) ex.res.destroy();
  }, limit);
  timer.unref();
  return timer;
}

function record({ deps, span, tx }: Exchange): void {
  span.setAttribute('http.response.status_code', tx.status);
  annotate(span, tx.verdict);
  if (tx.verdict.action === 'block' || tx.status >= 500) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: tx.verdict.reason });
  }
  span.end();
  deps.recorder.record(tx);
}

async function forward(
  ex: Exchange,
  mode: 'explicit' | 'transparent' | 'bumped',
  original?: OriginalDestination,
  tunnel?: BumpedTunnel,
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
    if (mode === 'explicit') target = parseAbsoluteTarget(req.url ?? '');
    else if (tunnel)
      target = { ...parseInterceptedTarget(req.url ?? '', req.headers.host, tunnel.port), scheme: 'https' };
    else target = parseInterceptedTarget(req.url ?? '', req.headers.host, original?.port ?? 80);
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

  if (tunnel) return forwardDecrypted(ex, target, tunnel);

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

/**
 * A request inside a bumped connection: it may only name the host the connection was decided and
 * validated for (421 otherwise, RFC 9110 §15.5.20), then goes through security rules, URL and content
 * filtering like any request, to the validated upstream connection.
 */
async function forwardDecrypted(ex: Exchange, target: Target, tunnel: BumpedTunnel): Promise<void> {
  const { deps, span, tx } = ex;
  tx.sni = tunnel.host;
  if (tunnel.tx.tls) tx.tls = tunnel.tx.tls;
  if (tunnel.page) {
    tx.client.zone = tunnel.flow.clientZone;
    tx.policyVersion = tunnel.tx.policyVersion;
    return sendPage(ex, tunnel.page, target);
  }
  if (target.host !== tunnel.host || target.port !== tunnel.port) {
    deps.metrics.badRequests.inc({ reason: 'misdirected' });
    return sendPage(
      ex,
      proxyVerdict(
        421,
        'WEBFILTER_MISDIRECTED',
        `This connection was opened to ${formatAuthority(tunnel.host, tunnel.port)}; a request for ${formatAuthority(target.host, target.port)} needs its own connection.`,
      ),
    );
  }
  const flow = { ...tunnel.flow, host: target.host };
  const decision = decideAndRecord(deps, tx, flow, target, 'https', span);
  if (decision.verdict.action === 'block') return sendPage(ex, decision.verdict, target);
  const contentFilter = decision.inspection?.contentFilter;
  if (contentFilter) {
    const blocked = filterRequest(
      contentFilter,
      target,
      parseContentLength(ex.req.headers['content-length']),
    );
    if (blocked) return sendPage(ex, withContext(blocked, decision), target);
  }
  await relay(ex, target, flow.serverIp, decision, contentFilter, tunnel.upstream);
}

function parseContentLength(value: string | undefined): number | undefined {
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
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

interface ReadBodyOptions {
  /** The profile's maxRequestBodySize. */
  limit: number | undefined;
  counted: (n: number) => void;
  /** Read whole up to this size; larger bodies stream. */
  bufferUpTo: number;
  /** A body held for its scan: room for each chunk in the proxy-wide budget, and an idle limit. */
  held?: { reserve: (n: number) => boolean; idleMs: number };
}

/** A client that holds budget for its upload must keep sending it. */
class UploadIdleError extends Error {
  override name = 'UploadIdleError';
}

/**
 * The request body, never trusted further than it was parsed: small bodies are read completely
 * before the upstream is contacted (a malformed chunk then reaches nobody); larger ones stream,
 * and a parse error mid-way aborts the upstream request before its body is complete.
 */
async function readRequestBody(req: IncomingMessage, opts: ReadBodyOptions): Promise<Buffer | Readable> {
  const iterator = req[Symbol.asyncIterator]();
  const chunks: Buffer[] = [];
  let size = 0;
  const take = (chunk: Buffer) => {
    size += chunk.length;
    opts.counted(chunk.length);
    if (opts.limit !== undefined && size > opts.limit)
      throw new BodyTooLargeError(`the request body exceeds the limit of ${opts.limit} bytes`);
    return chunk;
  };
  const held = opts.held;
  const next = () => (held ? nextWithin(iterator, held.idleMs) : iterator.next());
  while (size <= opts.bufferUpTo) {
    const step = await next();
    if (step.done) return Buffer.concat(chunks);
    const chunk = take(step.value as Buffer);
    chunks.push(chunk);
    // no room left to hold it for a scan: it streams, like a body over bufferUpTo
    if (held && !held.reserve(chunk.length)) break;
  }
  async function* rest() {
    yield* chunks;
    for (let step = await iterator.next(); !step.done; step = await iterator.next())
      yield take(step.value as Buffer);
  }
  return Readable.from(rest(), { objectMode: false });
}

/** The iterator's next chunk, or UploadIdleError when none comes within `ms`. */
async function nextWithin<T>(iterator: AsyncIterator<T>, ms: number): Promise<IteratorResult<T>> {
  let timer: NodeJS.Timeout | undefined;
  const idle = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(new UploadIdleError(`the client sent nothing for ${ms} ms of an upload held for scanning`)),
      ms,
    );
  });
  try {
    return await Promise.race([iterator.next(), idle]);
  } finally {
    clearTimeout(timer);
  }
}

/** The request body, read and (if the profile says so) scanned; ANSWERED once the client has its answer. */
const ANSWERED = Symbol('answered');

async function receiveBody(
  ex: Exchange,
  target: Target,
  decision: Decision,
  contentFilter: ContentFilter | undefined,
): Promise<Buffer | Readable | undefined | typeof ANSWERED> {
  const { deps, req, res, tx } = ex;
  const hasBody =
    req.headers['transfer-encoding'] !== undefined ||
    (parseContentLength(req.headers['content-length']) ?? 0) > 0;
  if (!hasBody) return undefined;
  // an upload the antivirus scans is read whole (up to maxScanSize) before anything goes upstream
  const av = decision.inspection?.antivirus;
  const declaredType = mediaType(req.headers['content-type']);
  let scanUpload =
    av?.scanUploads === true &&
    // a form's files carry their own names and types inside the body: scanned whatever they claim
    (declaredType === 'multipart/form-data' ||
      wantsScan(av, { ...(declaredType ? { declaredType } : {}), path: target.path }));
  const declaredLength = parseContentLength(req.headers['content-length']);
  if (scanUpload && av && declaredLength !== undefined && declaredLength > av.maxScanSize) {
    // too large to scan, as declared: decided before holding any of it
    const blocked = deps.antivirus.overSize(ex, av, declaredLength, 'upload', decision);
    if (blocked) {
      res.shouldKeepAlive = false; // its body is never read
      sendPage(ex, blocked, target);
      return ANSWERED;
    }
    scanUpload = false; // overSizeAction allow: streamed upstream unscanned, recorded
  }
  // what is held for the verdict counts against the proxy-wide budget, as a download's body does
  const held = { bytes: 0, refused: false };
  const hold = (n: number) => {
    if (!deps.antivirus.hold(n)) held.refused = true;
    else held.bytes += n;
    return !held.refused;
  };
  let body: Buffer | Readable;
  try {
    body = await readRequestBody(req, {
      limit: contentFilter?.maxRequestBodySize,
      counted: (n) => {
        tx.bytesIn += n;
      },
      bufferUpTo: scanUpload && av ? av.maxScanSize : BUFFERED_BODY_LIMIT,
      ...(scanUpload ? { held: { reserve: hold, idleMs: deps.config.clientIdleTimeout } } : {}),
    });
  } catch (err) {
    deps.antivirus.release(held.bytes);
    if (err instanceof BodyTooLargeError && contentFilter) {
      sendPage(ex, bodyTooLarge(contentFilter, decision), target);
      return ANSWERED;
    }
    // the client sent a malformed body or went away: nothing was sent upstream
    deps.metrics.badRequests.inc({ reason: 'body' });
    tx.error = `request body: ${(err as Error).message}`;
    res.destroy();
    return ANSWERED;
  }
  if (!scanUpload || !av || ex.closed || ex.timedOut) {
    deps.antivirus.release(held.bytes);
    return body;
  }
  let blocked: Verdict | undefined;
  try {
    blocked = Buffer.isBuffer(body)
      ? await deps.antivirus.check(ex, av, body, 'upload', decision, req.headers['content-encoding'])
      : held.refused
        ? deps.antivirus.busy(ex, av, 'upload', decision, held.bytes)
        : deps.antivirus.overSize(ex, av, declaredLength, 'upload', decision);
  } finally {
    deps.antivirus.release(held.bytes);
  }
  if (blocked && !ex.closed) {
    // the rest of an unread upload is never read: the connection cannot be reused
    if (!Buffer.isBuffer(body)) res.shouldKeepAlive = false;
    sendPage(ex, blocked, target);
    return ANSWERED;
  }
  return body;
}

async function relay(
  ex: Exchange,
  target: Target,
  serverIp: string,
  decision: Decision,
  contentFilter: ContentFilter | undefined,
  via?: Dispatcher,
): Promise<void> {
  const { deps, req, tx } = ex;
  const body = await receiveBody(ex, target, decision, contentFilter);
  if (body === ANSWERED || ex.closed) return;
  if (ex.timedOut) return sendUpstreamError(ex, totalTimeout(deps), target);
  const av = decision.inspection?.antivirus;

  const headers = withVia(endToEndHeaders(req.headers), req.httpVersion, deps.config.visibleHostname);
  // the Host the target was decided on, never the client's own (RFC 9112 §3.2.2 for absolute-form)
  headers.host = formatAuthority(target.host, target.port, target.scheme);
  if (av?.scanDownloads) {
    // a file fetched in pieces would be scanned in pieces (a signature split across two ranges
    // matches in neither): downloads the antivirus scans are always fetched whole
    delete headers.range;
    delete headers['if-range'];
  }
  const span = startSpan(
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
  const relay = new ResponseRelay(ex, {
    target,
    serverIp,
    decision,
    contentFilter,
    antivirus: av?.scanDownloads ? av : undefined,
    span,
    onBodyTooLarge: () => {
      if (contentFilter) sendPage(ex, bodyTooLarge(contentFilter, decision), target);
    },
  });
  ex.stopUpstream = (reason) => relay.stop(reason);
  deps.upstream.dispatch(
    {
      ip: serverIp,
      port: target.port,
      method: req.method ?? 'GET',
      path: target.path,
      headers,
      ...(body ? { body } : {}),
    },
    relay,
    via,
  );
  await relay.done;
}
