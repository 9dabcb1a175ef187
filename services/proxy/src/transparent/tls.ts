/**
 * Intercepted TLS (LAN tcp/443 redirected by nftables): read the ClientHello, decide on its SNI,
 * and splice the connection to the address the client dialled. Without decryption there is no
 * way to show a block page, so a blocked connection is closed; the event says why.
 */
import type { Socket } from 'node:net';
import { ClientHelloError, originalDestination, readClientHello } from '@moat/intercept';
import { attr } from '@moat/telemetry';
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { formatAuthority, normaliseHost, type Target } from '../http/target.js';
import { connectUpstream, splice } from '../http/tunnel.js';
import { startSpan } from '../observe/tracer.js';
import { startTransaction, type Transaction } from '../observe/transaction.js';
import { annotate, decideAndRecord, HostForgeryError, type ProxyDeps, resolveFlow } from '../pipeline.js';
import type { Verdict } from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';

const CLIENT_HELLO_TIMEOUT_MS = 10_000;

const refusal = (reason: string, tag = 'WEBFILTER_BAD_REQUEST', status = 400): Verdict => ({
  action: 'block',
  engine: 'firewall',
  status,
  tag,
  reason,
});

export function handleInterceptedTls(deps: ProxyDeps, client: Socket): void {
  const span = startSpan('TLS intercept', {
    kind: SpanKind.SERVER,
    attributes: { [attr.proxyMode]: 'tls-intercept' },
  });
  const tx = startTransaction('tls-intercept', 'TLS', '-', client, span.spanContext().traceId);
  client.on('error', () => undefined); // resets are recorded by the tunnel, never thrown
  context
    .with(trace.setSpan(ROOT_CONTEXT, span), () => intercept(deps, client, tx, span))
    .catch((err: unknown) => {
      deps.log.error({ err }, 'intercepted TLS handling failed');
      tx.error = (err as Error).message;
      client.destroy();
    })
    .finally(() => {
      annotate(span, tx.verdict);
      if (tx.verdict.action === 'block')
        span.setStatus({ code: SpanStatusCode.ERROR, message: tx.verdict.reason });
      span.end();
      deps.recorder.record(tx);
    });
}

function close(client: Socket, tx: Transaction, span: Span, verdict: Verdict): void {
  tx.verdict = verdict;
  tx.status = verdict.status;
  annotate(span, verdict);
  client.destroy();
}

async function intercept(deps: ProxyDeps, client: Socket, tx: Transaction, span: Span): Promise<void> {
  const original = originalDestination(client);
  if (!original) {
    deps.metrics.badRequests.inc({ reason: 'not-intercepted' });
    return close(
      client,
      tx,
      span,
      refusal('A connection reached the intercepted-TLS port without having been redirected to it.'),
    );
  }
  tx.server = { host: original.address, port: original.port, ip: original.address };
  let hello: Awaited<ReturnType<typeof readClientHello>>;
  try {
    hello = await readClientHello(client, { timeoutMs: CLIENT_HELLO_TIMEOUT_MS });
  } catch (err) {
    if (!(err instanceof ClientHelloError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'client-hello' });
    return close(client, tx, span, refusal(`No valid TLS ClientHello: ${err.message}.`));
  }
  const sni = hello.hello.sni;
  if (sni) {
    tx.sni = sni;
    span.setAttribute(attr.tlsSni, sni);
  }
  let host = original.address;
  if (sni) {
    try {
      host = normaliseHost(sni);
    } catch {
      return close(client, tx, span, refusal(`The SNI "${sni}" is not a valid host name.`));
    }
  }
  const target: Target = { scheme: 'https', host, port: original.port, path: '' };
  tx.url = `https://${formatAuthority(host, original.port, 'https')}/`;
  tx.server.host = host;
  span.updateName(`TLS ${formatAuthority(host, original.port)}`);

  let flow: Awaited<ReturnType<typeof resolveFlow>>['flow'];
  try {
    ({ flow } = await resolveFlow(deps, target, tx.client, original));
  } catch (err) {
    if (!(err instanceof HostForgeryError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'host-forgery' });
    return close(
      client,
      tx,
      span,
      refusal(err.message.replace('Host header', 'SNI'), 'WEBFILTER_HOST_FORGERY', 409),
    );
  }
  const decision = decideAndRecord(deps, tx, flow, target, 'https', span);
  if (decision.verdict.action === 'block') return close(client, tx, span, decision.verdict);

  let upstream: Socket;
  try {
    upstream = await connectUpstream(original.address, original.port, deps.config.connectTimeout);
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    deps.metrics.upstreamErrors.inc({ kind: err.kind });
    tx.error = err.message;
    tx.status = err.status;
    client.destroy();
    return;
  }
  tx.status = 200;
  deps.metrics.tunnels.inc();
  try {
    const result = await splice(client, upstream, hello.bytes, deps.config.tunnelIdleTimeout);
    tx.bytesIn = result.bytesUp;
    tx.bytesOut = result.bytesDown;
    if (result.error) tx.error = result.error;
  } finally {
    deps.metrics.tunnels.dec();
  }
}
