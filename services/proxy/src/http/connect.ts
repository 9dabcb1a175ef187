/**
 * CONNECT tunnels (RFC 9110 §9.3.6): the target is checked and decided on like any request, then
 * TLS mediation's plan applies: splice the bytes (decided on the host name alone), bump (decrypt,
 * and filter every request inside as plain HTTP), or refuse the tunnel.
 */
import type { IncomingMessage } from 'node:http';
import { isIP, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ClientHelloError, type ClientHelloRead, readClientHello } from '@moat/intercept';
import { attr } from '@moat/telemetry';
import { context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { startSpan } from '../observe/tracer.js';
import { startTransaction, type Transaction } from '../observe/transaction.js';
import {
  annotate,
  type Decision,
  decideAndRecord,
  HostForgeryError,
  type ProxyDeps,
  resolveFlow,
} from '../pipeline.js';
import type { Flow, Verdict } from '../policy/decide.js';
import { bump } from '../tls/bump.js';
import { closeRefused, recordPlan, relayTunnel, spliceAfterHello } from '../tls/outcome.js';
import { planTls, type TlsPlan } from '../tls/plan.js';
import { UpstreamError } from '../upstream/upstream.js';
import { renderVerdictPage } from './block-page.js';
import { writeRawResponse } from './raw-response.js';
import { BadTargetError, formatAuthority, normaliseHost, parseConnectTarget, type Target } from './target.js';
import { connectUpstream } from './tunnel.js';

export function handleConnect(
  deps: ProxyDeps,
  req: IncomingMessage,
  client: Socket,
  head: Buffer,
  accept: (socket: TLSSocket) => void,
): void {
  const span = startSpan('CONNECT', {
    kind: SpanKind.SERVER,
    attributes: { 'http.request.method': 'CONNECT', [attr.proxyMode]: 'connect' },
  });
  const tx = startTransaction('connect', 'CONNECT', req.url ?? '', client, span.spanContext().traceId);
  client.on('error', () => undefined); // a client reset is recorded when the tunnel ends, not thrown
  context
    .with(trace.setSpan(ROOT_CONTEXT, span), () => tunnel(deps, req, client, head, tx, span, accept))
    .catch((err: unknown) => {
      deps.log.error({ err, url: tx.url }, 'CONNECT handling failed');
      tx.error = (err as Error).message;
      // once the tunnel is established the bytes belong to TLS: a plaintext error page would be garbage
      if (tx.status === 200) {
        client.destroy();
        return;
      }
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
  span: Span,
  accept: (socket: TLSSocket) => void,
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
  const plan = planTls(decision.inspection, target.host, decision.verdict, deps.categorizer());
  if (plan.action === 'block') {
    recordPlan(deps, tx, span, plan);
    return refuse(deps, client, req, tx, plan.verdict);
  }
  const pageOnly = plan.action === 'bump' && plan.blockPage !== undefined;
  if (dnsError && !pageOnly) {
    deps.metrics.upstreamErrors.inc({ kind: 'dns' });
    return refuseUpstream(deps, client, req, tx, new UpstreamError(`${dnsError.message}.`, 502, 'dns'));
  }
  // a tunnel to an address says nothing about the site: with a TLS profile, the SNI decides
  if (plan.action === 'bump' || (isIP(target.host) !== 0 && decision.inspection?.tls))
    return tunnelByClientHello(deps, client, head, tx, span, { target, flow, decision, plan, accept });

  recordPlan(deps, tx, span, plan);
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
  client.write(ESTABLISHED);
  await relayTunnel(deps, client, upstream, head, tx);
}

const ESTABLISHED = 'HTTP/1.1 200 Connection established\r\n\r\n';

/**
 * A CONNECT decided by its ClientHello (a bump, or any tunnel to an address under a TLS profile): the
 * tunnel is established, then the ClientHello is read. Its SNI must name the host the tunnel was
 * decided for (a tunnel opened to one name cannot be used for another); a tunnel to an address takes
 * the SNI's name once the name is confirmed to resolve to it, and is decided again on that name.
 */
async function tunnelByClientHello(
  deps: ProxyDeps,
  client: Socket,
  head: Buffer,
  tx: Transaction,
  span: Span,
  decided: {
    target: Target;
    flow: Flow;
    decision: Decision;
    plan: Exclude<TlsPlan, { action: 'block' }>;
    accept: (socket: TLSSocket) => void;
  },
): Promise<void> {
  tx.status = 200;
  client.write(ESTABLISHED);
  if (head.length) client.unshift(head);
  let hello: ClientHelloRead;
  try {
    hello = await readClientHello(client, { timeoutMs: deps.config.headersTimeout });
  } catch (err) {
    if (!(err instanceof ClientHelloError)) throw err;
    deps.metrics.badRequests.inc({ reason: 'client-hello' });
    return closeRefused(
      client,
      tx,
      span,
      tlsRefusal(
        'SSL_PROXY_NOT_TLS',
        `The tunnel was to be inspected, but the client sent no valid TLS ClientHello: ${err.message}.`,
        decided.decision,
      ),
    );
  }
  const sni = hello.hello.sni;
  let { target, flow, decision, plan } = decided;
  if (sni) {
    tx.sni = sni;
    span.setAttribute(attr.tlsSni, sni);
    let name: string;
    try {
      name = normaliseHost(sni);
    } catch {
      return closeRefused(
        client,
        tx,
        span,
        tlsRefusal('SSL_PROXY_SNI_MISMATCH', `The SNI "${sni}" is not a valid host name.`, decision),
      );
    }
    if (name !== target.host) {
      if (isIP(target.host) === 0) {
        return closeRefused(
          client,
          tx,
          span,
          tlsRefusal(
            'SSL_PROXY_SNI_MISMATCH',
            `The tunnel was opened to ${target.host}, but the TLS handshake asks for ${name}.`,
            decision,
          ),
        );
      }
      // CONNECT to an address: decide again on the name, if it really is that address
      target = { ...target, host: name };
      try {
        ({ flow } = await resolveFlow(deps, target, tx.client, {
          address: decided.flow.serverIp,
          port: target.port,
        }));
      } catch (err) {
        if (!(err instanceof HostForgeryError)) throw err;
        return closeRefused(
          client,
          tx,
          span,
          tlsRefusal('WEBFILTER_HOST_FORGERY', err.message.replace('Host header', 'SNI'), decision, 409),
        );
      }
      tx.server.host = name;
      decision = decideAndRecord(deps, tx, flow, target, 'https', span);
      const again = planTls(decision.inspection, name, decision.verdict, deps.categorizer());
      if (again.action === 'block') {
        recordPlan(deps, tx, span, again);
        return closeRefused(client, tx, span, again.verdict);
      }
      plan = again;
    }
  }
  if (plan.action === 'splice') {
    recordPlan(deps, tx, span, plan);
    return spliceAfterHello(deps, client, hello.bytes, tx, { ip: flow.serverIp, port: target.port });
  }
  span.setAttribute(attr.tlsAction, 'bump');
  await bump({
    deps,
    client,
    hello: hello.bytes,
    host: target.host,
    port: target.port,
    flow,
    decision,
    plan,
    tx,
    span,
    accept: decided.accept,
  });
}

function tlsRefusal(tag: string, reason: string, decision: Decision, status = 403): Verdict {
  return { ...decision.verdict, action: 'block', engine: 'tls-mediation', tag, status, reason };
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
