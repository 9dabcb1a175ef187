import { availableParallelism } from 'node:os';
import { bool, byteSize, duration, port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { z } from 'zod';

/** Every MOAT_PROXY_* setting, with the defaults a gateway in front of a LAN should start from. */
export const proxyConfigSchema = baseConfigSchema.extend({
  /** Health, readiness and metrics. */
  httpPort: port().default(9402),
  /** Address the proxy ports listen on (the lab binds the LAN side). */
  listenHost: z.string().default('0.0.0.0'),
  /** Explicit proxy port (absolute-URI requests and CONNECT). */
  port: port().default(3128),
  /** Port nftables redirects intercepted plain HTTP to; 0 turns interception off. */
  transparentHttpPort: port().default(3129),
  /** Port nftables redirects intercepted TLS (tcp/443) to; 0 turns it off. */
  transparentTlsPort: port().default(3130),
  /**
   * Let several proxy processes listen on the same ports (SO_REUSEPORT): the kernel spreads client
   * connections across them. One process uses one core; run one per core this way.
   */
  reusePort: bool().default(false),
  /**
   * Proxy worker processes on this node (\`auto\`: one per available core). With more than one, this
   * process supervises them: each binds the proxy ports with SO_REUSEPORT, and the health/metrics
   * port (served by the supervisor) sums their metrics.
   */
  workers: z
    .union([z.literal('auto'), z.coerce.number().int().min(1).max(256)])
    .default(1)
    .transform((n) => (n === 'auto' ? availableParallelism() : n)),
  /** Name in the Via header and on block pages. */
  visibleHostname: z.string().default('moat'),
  /** Zone for clients whose address routes through no zone interface (e.g. a pod network). */
  defaultClientZone: z.string().optional(),
  /** Zone for upstreams whose address routes through no zone interface. */
  defaultUpstreamZone: z.string().optional(),

  connectTimeout: duration().default(10_000),
  /** Time allowed for a client to send a complete request head. */
  headersTimeout: duration().default(30_000),
  /** Idle keep-alive time for client connections. */
  clientIdleTimeout: duration().default(60_000),
  /** Idle time before an upstream pooled connection is closed. */
  upstreamIdleTimeout: duration().default(30_000),
  /** Longest a request may take from first byte to last, 0 = unlimited (large downloads). */
  requestTimeout: duration().default(0),
  /** A response that stalls longer than this between bytes gets 504 (before headers) or is cut. */
  upstreamIdleBodyTimeout: duration().default(120_000),
  /** A CONNECT tunnel or spliced TLS connection idle this long is closed. */
  tunnelIdleTimeout: duration().default(600_000),
  maxHeaderSize: byteSize().default(32 * 1024),
  /**
   * Most bytes of downloads and uploads held at once for their antivirus verdict (per process). A
   * transfer that would exceed it gets the profile's fail mode ("too busy to scan"). An upload being
   * held whose client sends nothing for clientIdleTimeout is cut off, so idle clients cannot sit on it.
   */
  avHoldLimit: byteSize().default(1024 ** 3),
  maxHeaderCount: z.coerce.number().int().min(8).max(1000).default(100),
  /** Upstream connections kept per origin. */
  upstreamConnectionsPerOrigin: z.coerce.number().int().min(1).max(10_000).default(128),

  dnsCacheTtl: duration().default(60_000),
  dnsNegativeTtl: duration().default(5_000),

  /** How often URL list directories are checked for changes. */
  listReloadInterval: duration().default(60_000),

  /** tls-mediation's gRPC address (host:port): leaf certificates for bumped connections. */
  tlsMediationAddress: z.string().min(1).default('127.0.0.1:50053'),
  /**
   * Mutual TLS to tls-mediation: the CA its certificate must chain to, and the proxy's own certificate
   * and key (all three or none; none = plaintext, for loopback only).
   */
  tlsMediationCaFile: z.string().optional(),
  tlsMediationCertFile: z.string().optional(),
  tlsMediationKeyFile: z.string().optional(),
  /** How long a handshake waits for a certificate from tls-mediation before the connection is refused. */
  tlsMediationTimeout: duration().default(5_000),
  /**
   * PEM files of CAs trusted for upstream servers besides the system store, for every TLS inspection
   * profile (comma-separated). Profiles add their own with upstreamValidation.extraCaFiles.
   */
  upstreamCaFiles: z
    .string()
    .default('')
    .transform((text) =>
      text
        .split(',')
        .map((file) => file.trim())
        .filter(Boolean),
    ),

  /** `stdout`, `off`, or a file path. */
  accessLog: z.string().default('stdout'),
  accessLogFormat: z.enum(['json', 'squid']).default('json'),
  /** Publish events.web.allowed for every allowed request (blocked ones are always published). */
  eventsAllowed: bool().default(true),
});
export type ProxyConfig = z.infer<typeof proxyConfigSchema>;

export const loadProxyConfig = (env = process.env): ProxyConfig =>
  loadServiceConfig('proxy', proxyConfigSchema, env) as ProxyConfig;
