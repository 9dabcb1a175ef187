import type { Verdict } from '../policy/decide.js';

export type ProxyMode = 'explicit' | 'transparent' | 'connect' | 'tls-intercept' | 'bumped';

/** What TLS mediation did with a tunnel (CONNECT or intercepted TLS). */
export interface TlsFacts {
  action: 'bump' | 'splice' | 'block';
  reason: string;
  profile?: string;
  certificateSource?: string;
  upstreamProtocol?: string;
  upstreamCipher?: string;
  /** The upstream problem that made it refuse (expired, wrong-host, …). */
  problem?: string;
  /** The upstream certificate problem a per-host exception let through. */
  toleratedProblem?: string;
}

/** Everything known about one request or tunnel when it ends: the access log, events and metrics read it. */
export interface Transaction {
  mode: ProxyMode;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Set when the transaction is recorded. */
  durationMs?: number;
  method: string;
  /** URL without its query string (as Squid's strip_query_terms). */
  url: string;
  status: number;
  client: { ip: string; port: number; zone?: string };
  server: { host: string; port: number; ip?: string; zone?: string };
  verdict: Verdict;
  /** Request and response body bytes (for tunnels: client→server and server→client). */
  bytesIn: number;
  bytesOut: number;
  contentType?: string;
  sni?: string;
  tls?: TlsFacts;
  traceId?: string;
  policyVersion?: number;
  /** What the antivirus said about the body (downloads or uploads), when it was consulted. */
  antivirus?: { result: 'clean' | 'infected' | 'error' | 'unscanned'; cached?: boolean; signature?: string };
  /** Set when the exchange failed after the decision (upstream error, client abort). */
  error?: string;
}

/** A transaction as it starts: nothing decided yet (an unfinished one records as an internal error). */
export function startTransaction(
  mode: ProxyMode,
  method: string,
  url: string,
  peer: { remoteAddress?: string | undefined; remotePort?: number | undefined },
  traceId: string,
): Transaction {
  return {
    mode,
    startedAt: performance.now(),
    method,
    url,
    status: 0,
    client: { ip: peer.remoteAddress ?? '', port: peer.remotePort ?? 0 },
    server: { host: '', port: 0 },
    verdict: {
      action: 'block',
      engine: 'firewall',
      status: 500,
      tag: 'WEBFILTER_ERROR',
      reason: 'unfinished',
    },
    bytesIn: 0,
    bytesOut: 0,
    traceId,
  };
}
