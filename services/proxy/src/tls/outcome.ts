/**
 * What a TLS decision leaves behind, alike for CONNECT tunnels, intercepted TLS and bumping: the plan
 * recorded on the transaction, span and metrics; a refused connection closed; a splice relayed.
 */
import type { Socket } from 'node:net';
import { attr } from '@moat/telemetry';
import type { Span } from '@opentelemetry/api';
import { connectUpstream, splice } from '../http/tunnel.js';
import type { Transaction } from '../observe/transaction.js';
import { annotate, type ProxyDeps } from '../pipeline.js';
import type { Verdict } from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';
import type { TlsPlan } from './plan.js';

/** Splice or block: what mediation decided, on the transaction, the span and the metrics. */
export function recordPlan(
  deps: ProxyDeps,
  tx: Transaction,
  span: Span,
  plan: Exclude<TlsPlan, { action: 'bump' }>,
): void {
  const reason = plan.action === 'block' ? plan.verdict.reason : plan.reason;
  tx.tls = {
    action: plan.action,
    reason,
    ...(plan.action === 'splice' && plan.profile ? { profile: plan.profile } : {}),
  };
  span.setAttribute(attr.tlsAction, plan.action);
  deps.metrics.tlsDecisions.inc({ action: plan.action });
}

/** A connection refused without a page (none can be shown on it): the verdict recorded, the socket closed. */
export function closeRefused(client: Socket, tx: Transaction, span: Span, verdict: Verdict): void {
  tx.verdict = verdict;
  tx.status = verdict.status;
  annotate(span, verdict);
  client.destroy();
}

/** Relays `client` ⇄ `upstream` (`head` first) until either closes, counting bytes on `tx`. */
export async function relayTunnel(
  deps: ProxyDeps,
  client: Socket,
  upstream: Socket,
  head: Buffer,
  tx: Transaction,
): Promise<void> {
  deps.metrics.tunnels.inc();
  try {
    const result = await splice(client, upstream, head, deps.config.tunnelIdleTimeout);
    tx.bytesIn = result.bytesUp;
    tx.bytesOut = result.bytesDown;
    if (result.error) tx.error = result.error;
  } finally {
    deps.metrics.tunnels.dec();
  }
}

/**
 * Splices a connection whose ClientHello was already read (it goes first) to `ip`:`port`. Nothing can
 * be said to the client any more: an unreachable upstream just closes it. A CONNECT keeps the 200 its
 * client already saw as its status.
 */
export async function spliceAfterHello(
  deps: ProxyDeps,
  client: Socket,
  hello: Buffer,
  tx: Transaction,
  to: { ip: string; port: number },
): Promise<void> {
  let upstream: Socket;
  try {
    upstream = await connectUpstream(to.ip, to.port, deps.config.connectTimeout);
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    deps.metrics.upstreamErrors.inc({ kind: err.kind });
    tx.error = err.message;
    tx.status ||= err.status;
    client.destroy();
    return;
  }
  tx.status ||= 200;
  await relayTunnel(deps, client, upstream, hello, tx);
}
