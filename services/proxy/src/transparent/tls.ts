/**
 * Intercepted TLS (LAN tcp/443 redirected by nftables): read the ClientHello, decide on its SNI,
 * then bump it (tls/bump.ts) or splice it to the address the client dialled, as TLS mediation's
 * plan says. A blocked connection that is not bumped cannot be shown a block page: it is closed,
 * and the event says why.
 */
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ClientHelloError, originalDestination, readClientHello } from '@moat/intercept';
import { attr } from '@moat/telemetry';
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { formatAuthority, normaliseHost, type Target } from '../http/target.js';
import { startSpan } from '../observe/tracer.js';
import { startTransaction, type Transaction } from '../observe/transaction.js';
import { annotate, decideAndRecord, HostForgeryError, type ProxyDeps, resolveFlow } from '../pipeline.js';
import type { Verdict } from '../policy/decide.js';
import { bump } from '../tls/bump.js';
import { closeRefused, recordPlan, spliceAfterHello } from '../tls/outcome.js';
import { planTls } from '../tls/plan.js';

const CLIENT_HELLO_TIMEOUT_MS = 10_000;

const refusal = (reason: string, tag = 'WEBFILTER_BAD_REQUEST', status = 400): Verdict => ({
  action: 'block',
  engine: 'firewall',
  status,
  tag,
  reason,
});

export function handleInterceptedTls(
  deps: ProxyDeps,
  client: Socket,
  accept: (socket: TLSSocket) => void,
): void {
  const span = startSpan('TLS intercept', {
    kind: SpanKind.SERVER,
    attributes: { [attr.proxyMode]: 'tls-intercept' },
  });
  const tx = startTransaction('tls-intercept', 'TLS', '-', client, span.spanContext().traceId);
  client.on('error', () => undefined); // resets are recorded by the tunnel, never thrown
  context
    .with(trace.setSpan(ROOT_CONTEXT, span), () => intercept(deps, client, tx, span, accept))
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

async function intercept(
  deps: ProxyDeps,
  client: Socket,
  tx: Transaction,
  span: Span,
  accept: (socket: TLSSocket) => void,
): Promise<void> {
  const original = originalDestination(client);
  if (!original) {
    deps.metrics.badRequests.inc({ reason: 'not-intercepted' });
    return closeRefused(
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
    return closeRefused(client, tx, span, refusal(`No valid TLS ClientHello: ${err.message}.`));
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
      return closeRefused(client, tx, span, refusal(`The SNI "${sni}" is not a valid host name.`));
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
    return closeRefused(
      client,
      tx,
      span,
      refusal(err.message.replace('Host header', 'SNI'), 'WEBFILTER_HOST_FORGERY', 409),
    );
  }
  const decision = decideAndRecord(deps, tx, flow, target, 'https', span);
  const plan = planTls(decision.inspection, host, decision.verdict, deps.categorizer());
  span.setAttribute(attr.tlsAction, plan.action);
  if (plan.action === 'bump') {
    return bump({
      deps,
      client,
      hello: hello.bytes,
      host,
      port: original.port,
      flow,
      decision,
      plan,
      tx,
      span,
      accept,
    });
  }
  recordPlan(deps, tx, span, plan);
  if (plan.action === 'block') return closeRefused(client, tx, span, plan.verdict);
  await spliceAfterHello(deps, client, hello.bytes, tx, { ip: original.address, port: original.port });
}
