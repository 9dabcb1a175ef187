/**
 * CONNECT tunnels (RFC 9110 §9.3.6): the target is checked and decided on like any request (its
 * host name is all URL filtering can see until TLS is mediated), then the bytes are spliced.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { attr } from '@moat/telemetry';
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { startSpan } from '../observe/tracer.js';
import { startTransaction, type Transaction } from '../observe/transaction.js';
import { annotate, decideAndRecord, type ProxyDeps, resolveFlow } from '../pipeline.js';
import type { Verdict } from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';
import { renderVerdictPage } from './block-page.js';
import { writeRawResponse } from './raw-response.js';
import { BadTargetError, formatAuthority, parseConnectTarget } from './target.js';
import { connectUpstream, splice } from './tunnel.js';

export function handleConnect(deps: ProxyDeps, req: IncomingMessage, client: Socket, head: Buffer): void {
  const span = startSpan('CONNECT', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'CONNECT', [attr.proxyMode]: 'connect' },
  });
  const tx = startTransaction('connect', 'CONNECT', req.url ?? '', client, span.spanContext().traceId);
  client.on('error', () => undefined); // a client reset is recorded when the tunnel ends, not thrown
  context
    .with(trace.setSpan(ROOT_CONTEXT, span), () => tunnel(deps, req, client, head, tx, span))
    .catch((err: unknown) => {
      deps.log.error({ err, url: tx.url }, 'CONNECT handling failed');
      tx.error = (err as Error).message;
      refuse(deps, client, req, tx, {
        ...tx.verdict,
        status: 500,
        reason: 'The proxy failed to handle this request.',
      });
    })
    .finally(() => {
      span.setAttribute('http.response.status_code', tx.status);
      annotate(span, tx.verdict);
      if (tx.verdict.action === 'block' || tx.status >= 500)
        span.setStatus({ code: SpanStatusCode.ERROR, message: tx.verdict.reason });
      span.end();
      deps.recorder.record(tx);
    });
}

async function tunnel(
  deps: ProxyDeps,
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
  tx: Transaction,
  span: ReturnType<typeof trace.getActiveSpan> & object,
): Promise<void> {
  let target: ReturnType<typeof parseConnectTarget>;
  try {
    target = parseConnectTarget(req.url ?? '');
  } catch (err) {
    if (!(err instanceof BadTargetError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'connect-target' });
    return refuse(deps, client, req, tx, {
      action: 'block',
      engine: 'firewall',
      status: 400,
      tag: 'WEBFILTER_BAD_REQUEST',
      reason: `Invalid CONNECT target: ${err.message}.`,
    });
  }
  tx.url = formatAuthority(target.host, target.port);
  tx.server = { host: target.host, port: target.port };
  span.updateName(`CONNECT ${tx.url}`);
  span.setAttributes({ 'server.address': target.host, 'server.port': target.port });

  const { flow, dnsError } = await resolveFlow(deps, target, tx.client);
  const decision = decideAndRecord(deps, tx, flow, target, 'https', span);
  if (decision.verdict.action === 'block') return refuse(deps, client, req, tx, decision.verdict);
  if (dnsError) {
    deps.metrics.upstreamErrors.inc({ kind: 'dns' });
    return refuseUpstream(deps, client, req, tx, new UpstreamError(`${dnsError.message}.`, 502, 'dns'));
  }

  let upstream: Socket;
  try {
    upstream = await connectUpstream(flow.serverIp, target.port, deps.config.connectTimeout);
  } catch (err) {
    if (!(err instanceof UpstreamError)) throw err;
    deps.metrics.upstreamErrors.inc({ kind: err.kind });
    return refuseUpstream(deps, client, req, tx, err);
  }
  if (client.destroyed) {
    upstream.destroy();
    tx.error = 'client closed the connection';
    return;
  }
  tx.status = 200;
  client.write('HTTP/1.1 200 Connection established\r\n\r\n');
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

function refuse(
  deps: ProxyDeps,
  client: Socket,
  req: IncomingMessage,
  tx: Transaction,
  verdict: Verdict,
): void {
  tx.verdict = verdict;
  tx.status = verdict.status;
  const span = trace.getActiveSpan();
  if (span) annotate(span, verdict);
  const { body, headers } = renderVerdictPage(
    verdict,
    {
      title: verdict.status === 403 ? 'Access blocked' : `Tunnel refused (${verdict.status})`,
      url: tx.url,
      ...(tx.traceId ? { traceId: tx.traceId } : {}),
      proxyName: deps.config.visibleHostname,
    },
    req.headers.accept,
  );
  writeRawResponse(client, verdict.status, headers, body);
}

function refuseUpstream(
  deps: ProxyDeps,
  client: Socket,
  req: IncomingMessage,
  tx: Transaction,
  err: UpstreamError,
): void {
  tx.error = err.message;
  refuse(deps, client, req, tx, {
    ...tx.verdict,
    status: err.status,
    reason: err.message,
    tag: 'WEBFILTER_UPSTREAM_ERROR',
  });
  tx.verdict = { ...tx.verdict, action: 'allow' };
}
