/**
 * Bumping one TLS connection: validate the upstream first (strictly), then present the client a
 * leaf from tls-mediation naming what the upstream's certificate names, and hand the decrypted
 * connection to the bumped HTTP server, where each request is filtered as plain HTTP is. When the
 * upstream fails validation, or the host is blocked, the client still gets a handshake (with a leaf
 * for the name it asked for) and then only a block page saying why: never the upstream's content.
 */
import { isIP, type Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { attr } from '@moat/telemetry';
import { type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { Client, type Dispatcher } from 'undici';
import { formatAuthority } from '../http/target.js';
import { startSpan } from '../observe/tracer.js';
import type { Transaction } from '../observe/transaction.js';
import { annotate, type Decision, type ProxyDeps } from '../pipeline.js';
import type { TlsInspection } from '../policy/compile.js';
import type { Flow, Verdict } from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';
import { CertificateUnavailableError, type ClientLeaf } from './certificates.js';
import { closeRefused } from './outcome.js';
import type { TlsPlan } from './plan.js';
import { connectUpstreamTls, type UpstreamTls, UpstreamTlsError } from './upstream-tls.js';

/** A decrypted connection, as the bumped HTTP server sees it. */
export interface BumpedTunnel {
  host: string;
  port: number;
  flow: Flow;
  decision: Decision;
  /** The tunnel's span: requests on the connection are its children (one trace per connection). */
  span: Span;
  tx: Transaction;
  /** Where requests go: a client bound to this tunnel's validated upstream connection(s). */
  upstream?: Dispatcher;
  /** Set when the connection was bumped only to answer every request with this verdict's page. */
  page?: Verdict;
  /** Requests received so far (the bumped server counts them). */
  requests: number;
}

const tunnels = new WeakMap<Socket, BumpedTunnel>();

/** The tunnel a decrypted socket belongs to (undefined for any other socket). */
export function tunnelOf(socket: Socket): BumpedTunnel | undefined {
  return tunnels.get(socket);
}

export interface BumpInput {
  deps: ProxyDeps;
  /** The client connection, paused, its ClientHello already read (`hello`). */
  client: Socket;
  hello: Buffer;
  host: string;
  port: number;
  flow: Flow;
  decision: Decision;
  plan: Extract<TlsPlan, { action: 'bump' }>;
  tx: Transaction;
  span: Span;
  /** Hands the decrypted socket to the bumped HTTP server. */
  accept: (socket: TLSSocket) => void;
}

const isName = (host: string) => isIP(host) === 0;

/** Bumps the connection; resolves when it has closed. Never rejects for a client's or upstream's fault. */
export async function bump(input: BumpInput): Promise<void> {
  const { deps, plan, tx } = input;
  tx.tls = { action: 'bump', reason: plan.reason, profile: plan.tls.profile };
  deps.metrics.tlsDecisions.inc({ action: 'bump' });
  if (plan.blockPage) return servePage(input, plan.blockPage);

  let upstream: UpstreamTls;
  try {
    upstream = await validatedUpstream(input, plan.tls);
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    deps.metrics.upstreamErrors.inc({ kind: err.kind });
    tx.error = err.message;
    if (err instanceof UpstreamTlsError) {
      tx.tls.problem = err.problem;
      return servePage(input, {
        ...input.decision.verdict,
        action: 'block',
        engine: 'tls-mediation',
        tag: 'SSL_PROXY_UPSTREAM_REFUSED',
        status: 502,
        profile: plan.tls.profile,
        reason: err.message,
      });
    }
    // not the upstream's TLS but its reachability: explained like any upstream failure
    return servePage(
      input,
      { ...input.decision.verdict, status: err.status, tag: 'WEBFILTER_UPSTREAM_ERROR', reason: err.message },
      'allow',
    );
  }
  tx.tls.upstreamProtocol = upstream.protocol;
  tx.tls.upstreamCipher = upstream.cipher;
  if (upstream.toleratedProblem) {
    tx.tls.toleratedProblem = upstream.toleratedProblem;
    deps.log.warn(
      {
        host: input.host,
        problem: upstream.toleratedProblem,
        profile: plan.tls.profile,
        trace_id: tx.traceId,
      },
      'upstream certificate problem tolerated by a policy exception',
    );
  }

  const leaf = await leafFor(input, { dnsNames: upstream.dnsNames, ipAddresses: upstream.ipAddresses });
  if (!leaf) {
    upstream.socket.destroy();
    return;
  }
  let first: UpstreamTls | undefined = upstream;
  const dispatcher = new Client(`https://${formatAuthority(input.host, input.port)}`, {
    ...deps.upstream.clientOptions(),
    connect: (_options, callback) => {
      // the connection validated before the client's handshake serves the first request; any later
      // one (the upstream closed keep-alive) is validated the same way
      const ready = first;
      first = undefined;
      // the validated connection may have been closed by the upstream while the client took its time
      const usable = ready && !ready.socket.destroyed && !ready.socket.readableEnded;
      if (ready && !usable) ready.socket.destroy();
      // undici expects the callback asynchronously, as from a real connect: called synchronously, its
      // request went nowhere and the client's side of the tunnel saw end-of-stream
      if (ready && usable) {
        setImmediate(() => callback(null, ready.socket));
        return;
      }
      validatedUpstream(input, plan.tls).then(
        (next) => callback(null, next.socket),
        (err: Error) => callback(err, null),
      );
    },
  });
  try {
    await serveDecrypted(input, leaf, { upstream: dispatcher });
  } finally {
    first?.socket.destroy();
    await dispatcher.destroy().catch(() => undefined);
  }
}

async function validatedUpstream(input: BumpInput, tls: TlsInspection): Promise<UpstreamTls> {
  const { deps, host, port, flow } = input;
  const exception = tls.validationExceptions.matches(host);
  const span = startSpan(
    'tls.upstream_handshake',
    {
      kind: SpanKind.CLIENT,
      attributes: { 'server.address': flow.serverIp, 'server.port': port, [attr.tlsSni]: host },
    },
    input.span,
  );
  try {
    const upstream = await connectUpstreamTls({
      ip: flow.serverIp,
      port,
      ...(isName(host) ? { servername: host } : {}),
      context: deps.tls.trust.context(tls.extraCas),
      tolerateCertificateProblems: exception !== undefined,
      timeoutMs: deps.config.connectTimeout,
    });
    span.setAttributes({ 'tls.protocol.version': upstream.protocol, 'tls.cipher': upstream.cipher });
    if (upstream.toleratedProblem)
      span.setAttribute(attr.tlsProblem, `tolerated: ${upstream.toleratedProblem}`);
    return upstream;
  } catch (err) {
    if (err instanceof UpstreamTlsError) span.setAttribute(attr.tlsProblem, err.problem);
    span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/** The leaf for the client's handshake, or undefined (connection refused and recorded) when there is none. */
async function leafFor(
  input: BumpInput,
  names: { dnsNames: readonly string[]; ipAddresses: readonly string[] },
): Promise<ClientLeaf | undefined> {
  const { deps, tx } = input;
  try {
    const leaf = await deps.tls.certificates.leaf(
      { sni: input.host, ...names, minVersion: input.plan.tls.minClientTls },
      input.span,
    );
    deps.metrics.tlsCertificates.inc({ source: leaf.source });
    if (tx.tls) tx.tls.certificateSource = leaf.source;
    return leaf;
  } catch (err) {
    if (!(err instanceof CertificateUnavailableError)) throw err;
    // fail closed: without a certificate the connection can be neither inspected nor answered
    deps.metrics.tlsMediationErrors.inc();
    deps.log.error(
      { err: err.message, host: input.host, trace_id: tx.traceId },
      'no certificate for a bumped connection; refused',
    );
    closeRefused(input.client, input.tx, input.span, {
      ...input.decision.verdict,
      action: 'block',
      engine: 'tls-mediation',
      tag: 'SSL_PROXY_MEDIATION_UNAVAILABLE',
      status: 503,
      reason: `The connection could not be inspected, so it was refused: ${err.message}.`,
    });
    return undefined;
  }
}

/**
 * Completes the handshake with a leaf for the name the client asked for, then answers every request
 * with `verdict`'s page. `recordAs` 'allow' keeps an upstream failure counted as allowed by policy.
 */
async function servePage(
  input: BumpInput,
  verdict: Verdict,
  recordAs: 'block' | 'allow' = 'block',
): Promise<void> {
  const { tx, span } = input;
  tx.verdict = verdict;
  tx.status = verdict.status;
  annotate(span, verdict);
  if (tx.tls && verdict.engine === 'tls-mediation')
    span.setAttribute(attr.tlsProblem, tx.tls.problem ?? 'blocked');
  const leaf = await leafFor(input, { dnsNames: [], ipAddresses: [] });
  if (!leaf) return;
  await serveDecrypted(input, leaf, { page: verdict });
  tx.verdict = recordAs === 'allow' ? { ...verdict, action: 'allow' } : verdict;
  tx.status = verdict.status;
}

/** The client's TLS handshake with the leaf; then the connection belongs to the bumped HTTP server until it closes. */
async function serveDecrypted(
  input: BumpInput,
  leaf: ClientLeaf,
  purpose: { upstream: Dispatcher } | { page: Verdict },
): Promise<void> {
  const { deps, client, tx } = input;
  if (client.destroyed) {
    tx.error ??= 'client closed the connection';
    return;
  }
  client.unshift(input.hello);
  const secure = new TLSSocket(client, {
    isServer: true,
    secureContext: leaf.context,
    ALPNProtocols: ['http/1.1'],
  });
  const handshake = await new Promise<Error | undefined>((resolve) => {
    const timer = setTimeout(
      () => resolve(new Error('the client did not complete the TLS handshake in time')),
      deps.config.headersTimeout,
    );
    secure.once('secure', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    secure.once('error', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
  if (handshake) {
    const unknownCa = /unknown ca|bad certificate|certificate unknown/i.test(handshake.message);
    deps.metrics.tlsClientHandshakeFailures.inc({ reason: unknownCa ? 'unknown-ca' : 'other' });
    tx.error = unknownCa
      ? 'the client refused the Moat certificate: it does not trust the Moat CA (install it from tls-mediation /ca.pem)'
      : `client TLS handshake failed: ${handshake.message.split('\n')[0]}`;
    secure.destroy();
    return;
  }
  secure.on('error', () => undefined); // resets end the connection; the requests record their own errors
  tx.status ||= 200;
  const tunnel: BumpedTunnel = {
    host: input.host,
    port: input.port,
    flow: input.flow,
    decision: input.decision,
    span: input.span,
    tx,
    requests: 0,
    ...purpose,
  };
  tunnels.set(secure, tunnel);
  deps.metrics.tunnels.inc();
  // The bumped server never listens, so Node does not enforce its header deadline on these sockets:
  // a client that completes the handshake and then sends no request is cut off here (idle ones by
  // the server's timeout, see server.ts).
  const firstRequest = setTimeout(() => {
    if (tunnel.requests > 0) return;
    tx.error ??= 'the client sent no request after the TLS handshake';
    secure.destroy();
  }, deps.config.headersTimeout);
  try {
    await new Promise<void>((resolve) => {
      secure.once('close', () => resolve());
      input.accept(secure);
    });
  } finally {
    clearTimeout(firstRequest);
    deps.metrics.tunnels.dec();
    tx.bytesIn = secure.bytesRead;
    tx.bytesOut = secure.bytesWritten;
  }
}
