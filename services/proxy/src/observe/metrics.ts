import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** The proxy's metrics; names are `moat_proxy_*` and labels stay low-cardinality (no URLs, no hosts). */
export function createProxyMetrics(registry: Registry) {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'moat_proxy_requests_total',
      help: 'Requests and tunnels handled, by mode, verdict and engine that decided',
      labelNames: ['mode', 'verdict', 'engine'] as const,
      registers,
    }),
    duration: new Histogram({
      name: 'moat_proxy_request_duration_seconds',
      help: 'Time from request to the end of the response (tunnels excluded)',
      labelNames: ['verdict'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    bytes: new Counter({
      name: 'moat_proxy_bytes_total',
      help: 'Body bytes relayed, by direction (tunnels included)',
      labelNames: ['direction'] as const,
      registers,
    }),
    badRequests: new Counter({
      name: 'moat_proxy_bad_requests_total',
      help: 'Requests refused before policy because they were malformed, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    upstreamErrors: new Counter({
      name: 'moat_proxy_upstream_errors_total',
      help: 'Upstream failures, by kind (refused, connect-timeout, dns, reset, …)',
      labelNames: ['kind'] as const,
      registers,
    }),
    connections: new Gauge({
      name: 'moat_proxy_client_connections',
      help: 'Open client connections, by listener',
      labelNames: ['listener'] as const,
      registers,
    }),
    tunnels: new Gauge({
      name: 'moat_proxy_tunnels',
      help: 'Open CONNECT and spliced TLS tunnels',
      registers,
    }),
    avVerdicts: new Counter({
      name: 'moat_proxy_av_verdicts_total',
      help: 'Antivirus outcomes for scanned bodies: clean, infected, error (no verdict), oversize (blocked unscanned); cached = answered from the verdict cache',
      labelNames: ['result', 'cached'] as const,
      registers,
    }),
    avUnscanned: new Counter({
      name: 'moat_proxy_av_unscanned_total',
      help: 'Bodies delivered without a virus scan, by reason: fail-open (no verdict under a fail-open profile) or oversize (over maxScanSize, allowed)',
      labelNames: ['reason'] as const,
      registers,
    }),
    avBusy: new Counter({
      name: 'moat_proxy_av_busy_total',
      help: 'Downloads and uploads that found the budget for bodies held for scanning spent (MOAT_PROXY_AV_HOLD_LIMIT); they get the fail mode',
      registers,
    }),
    avUnavailable: new Counter({
      name: 'moat_proxy_av_unavailable_total',
      help: 'Transfers that got no antivirus verdict in time (scanners unavailable): blocked under fail-closed, delivered unscanned under fail-open; alert when this grows',
      registers,
    }),
    tlsDecisions: new Counter({
      name: 'moat_proxy_tls_decisions_total',
      help: 'TLS connections by what mediation did with them: bump, splice or block.',
      labelNames: ['action'],
      registers: [registry],
    }),
    tlsCertificates: new Counter({
      name: 'moat_proxy_tls_certificates_total',
      help: 'Leaf certificates used for bumped connections, by source (proxy cache, tls-mediation memory, redis, newly issued).',
      labelNames: ['source'],
      registers: [registry],
    }),
    tlsMediationErrors: new Counter({
      name: 'moat_proxy_tls_mediation_errors_total',
      help: 'Connections refused because tls-mediation gave no certificate (unreachable, timed out, refused the names).',
      registers: [registry],
    }),
    tlsClientHandshakeFailures: new Counter({
      name: 'moat_proxy_tls_client_handshake_failures_total',
      help: 'Bumped connections whose client refused the TLS handshake (unknown-ca: the client does not trust the Moat CA).',
      labelNames: ['reason'],
      registers: [registry],
    }),
    urlListEntries: new Gauge({
      name: 'moat_proxy_url_list_entries',
      help: 'Entries in the loaded URL category lists',
      registers,
      // every worker process loads the same lists (the memory gauge below does sum up)
      aggregator: 'max',
    }),
    urlListBytes: new Gauge({
      name: 'moat_proxy_url_list_bytes',
      help: 'Memory held by the URL category tables, in bytes',
      registers,
    }),
    urlListReloads: new Counter({
      name: 'moat_proxy_url_list_reloads_total',
      help: 'URL list (re)builds, by result',
      labelNames: ['result'] as const,
      registers,
    }),
  };
}
export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
