/**
 * One forwarded HTTP request in flight, shared by its request side (forward.ts) and its response
 * side (response-relay.ts), and the answers the proxy gives on it by itself: block pages and
 * explained upstream failures.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Transaction } from '../observe/transaction.js';
import { annotate, type Decision, type ProxyDeps } from '../pipeline.js';
import type { Verdict } from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';
import { renderVerdictPage } from './block-page.js';
import type { Target } from './target.js';

export interface Exchange {
  deps: ProxyDeps;
  req: IncomingMessage;
  res: ServerResponse;
  span: Span;
  tx: Transaction;
  /** The client response closed (finished or not): nothing more is sent on it. */
  closed: boolean;
  /** The transaction's deadline passed. */
  timedOut: boolean;
  /** Stops the upstream exchange once one is dispatched (the client left, or the deadline passed). */
  stopUpstream?: (reason: Error) => void;
}

/** A refusal the proxy makes itself (not a policy block): bad request, loop, forgery, upstream failure. */
export function proxyVerdict(status: number, tag: string, reason: string): Verdict {
  return { action: 'block', engine: 'firewall', status, tag, reason };
}

/** Carries the rule and UTM policy of the decision over to a later content verdict. */
export function withContext(verdict: Verdict, decision: Decision): Verdict {
  return {
    ...verdict,
    ...(decision.verdict.rule ? { rule: decision.verdict.rule } : {}),
    ...(decision.verdict.utmPolicy ? { utmPolicy: decision.verdict.utmPolicy } : {}),
  };
}

export function totalTimeout(deps: ProxyDeps): UpstreamError {
  return new UpstreamError(
    `The request took longer than the proxy's limit of ${Math.round(deps.config.requestTimeout / 1000)} s.`,
    504,
    'total-timeout',
  );
}

/** Answers with the verdict's page (block page, or an explained error) unless the response already started. */
export function sendPage(ex: Exchange, verdict: Verdict, target?: Target): void {
  const { deps, req, res, span, tx } = ex;
  tx.verdict = verdict;
  tx.status = verdict.status;
  annotate(span, verdict);
  if (res.headersSent || ex.closed) {
    res.destroy();
    return;
  }
  const { body, headers } = renderVerdictPage(
    verdict,
    {
      title: titleFor(verdict),
      ...(target ? { url: tx.url } : {}),
      ...(tx.traceId ? { traceId: tx.traceId } : {}),
      proxyName: deps.config.visibleHostname,
    },
    req.headers.accept,
  );
  res.writeHead(verdict.status, {
    ...headers,
    'content-length': Buffer.byteLength(body),
    ...(verdict.status === 400 || verdict.status === 431 ? { connection: 'close' } : {}),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/** An upstream failure page: the decision allowed the request, so it is recorded as allowed. */
export function sendUpstreamError(ex: Exchange, err: UpstreamError, target: Target): void {
  ex.tx.error = err.message;
  if (err.kind.startsWith('tls-')) {
    // a bumped tunnel's later upstream connection failed validation: a refusal, as for the first one
    sendPage(
      ex,
      {
        ...ex.tx.verdict,
        action: 'block',
        engine: 'tls-mediation',
        status: err.status,
        reason: err.message,
        tag: 'SSL_PROXY_UPSTREAM_REFUSED',
      },
      target,
    );
    return;
  }
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
  ex.tx.verdict = { ...ex.tx.verdict, action: 'allow' };
}

function titleFor({ status, tag }: Verdict): string {
  if (status === 403 || status === 413) return 'Access blocked';
  // the upstream answered, but not safely enough to be trusted: not a reachability problem
  if (tag === 'SSL_PROXY_UPSTREAM_REFUSED') return 'Insecure server refused';
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
