import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CliError } from './errors.js';
import { repoRoot } from './paths.js';
import type { ReadyCheck } from './probes.js';
import type { ServiceTlsFiles } from './service-tls.js';

/**
 * The one list of Moat services that `moat dev` and `moat lab` start.
 * Adding a service = adding an entry here (ports must be unique: in the lab
 * every service shares the moat-gw namespace).
 */

export interface ServicePorts {
  /** HTTP port serving /healthz and /readyz (the readiness probe target). */
  http: number;
  grpc?: number;
  /** The explicit web proxy port (proxy only). */
  proxy?: number;
  /** The CA certificate endpoint clients download it from (tls-mediation only). */
  ca?: number;
  /** The clamd beside the worker, on loopback (av-scanner only). */
  clamd?: number;
}

/** What a service needs to know about the runtime it is started in. */
export interface ServiceContext {
  natsUrl: string;
  redisUrl: string;
  ports: ServicePorts;
  /** Names of every service started in this run (control aggregates their status). */
  expectedServices: readonly string[];
  logLevel: string;
  /** Directory for unix sockets reachable from the host (lab only: namespaces share the filesystem). */
  socketDir?: string;
  /** Where services keep state between restarts (a subdirectory each). */
  stateDir: string;
  /** Every service's ports in this run, for services that call each other. */
  peers: Readonly<Record<string, ServicePorts>>;
  /** The CA the lab's origins are signed by (lab only: it stands in for the public roots). */
  upstreamCaFile?: string;
  /** Certificates for the proxy ↔ tls-mediation gRPC channel (mutual TLS); plaintext without. */
  serviceTls?: ServiceTlsFiles;
}

/** A process that runs beside a service and must be ready before it (clamd beside av-scanner). */
export interface SidecarDefinition {
  name: string;
  command: string;
  args: string[];
  ready: ReadyCheck;
}

export interface ServiceDefinition {
  name: string;
  /** Package directory, relative to the repository root. */
  packageDir: string;
  /** Entry point relative to packageDir. */
  entry: string;
  defaultPorts: ServicePorts;
  /**
   * The service owns kernel state (nftables, qdiscs): it runs in the lab, inside moat-gw, and never
   * under `moat dev`, which runs on the host itself.
   */
  labOnly?: boolean;
  /**
   * In the lab the service runs as `nobody`: it needs no privilege, and must not be able to read what
   * other services guard (the proxy and the interception CA's key).
   */
  unprivileged?: boolean;
  env(ctx: ServiceContext): Record<string, string>;
  /** Processes started (and ready) before the service, stopped after it. */
  sidecars?(ctx: ServiceContext): SidecarDefinition[];
  /** Executables the service or its sidecars need (checked before anything starts). */
  requires?: readonly string[];
}

/** What every Moat service reads alike: where NATS and Redis are, and how much to log. */
const sharedEnv = (ctx: ServiceContext) => ({
  MOAT_NATS_URL: ctx.natsUrl,
  MOAT_REDIS_URL: ctx.redisUrl,
  MOAT_LOG_LEVEL: ctx.logLevel,
});

export const SERVICES: readonly ServiceDefinition[] = [
  {
    name: 'control',
    packageDir: 'services/control',
    entry: 'dist/main.js',
    defaultPorts: { grpc: 50051, http: 9401 },
    env: (ctx) => ({
      ...sharedEnv(ctx),
      MOAT_CONTROL_GRPC_PORT: String(ctx.ports.grpc),
      MOAT_CONTROL_HTTP_PORT: String(ctx.ports.http),
      ...(ctx.socketDir ? { MOAT_CONTROL_GRPC_SOCKET: join(ctx.socketDir, 'control.sock') } : {}),
      MOAT_CONTROL_EXPECTED_SERVICES: ctx.expectedServices.join(','),
    }),
  },
  {
    name: 'proxy',
    packageDir: 'services/proxy',
    entry: 'dist/main.js',
    defaultPorts: { proxy: 3128, http: 9402 },
    unprivileged: true,
    env: (ctx) => ({
      ...sharedEnv(ctx),
      MOAT_PROXY_PORT: String(ctx.ports.proxy),
      MOAT_PROXY_HTTP_PORT: String(ctx.ports.http),
      MOAT_PROXY_TLS_MEDIATION_ADDRESS: `127.0.0.1:${ctx.peers['tls-mediation']?.grpc ?? 50053}`,
      ...(ctx.upstreamCaFile ? { MOAT_PROXY_UPSTREAM_CA_FILES: ctx.upstreamCaFile } : {}),
      ...(ctx.serviceTls
        ? {
            MOAT_PROXY_TLS_MEDIATION_CA_FILE: ctx.serviceTls.caFile,
            MOAT_PROXY_TLS_MEDIATION_CERT_FILE: ctx.serviceTls.proxy.certFile,
            MOAT_PROXY_TLS_MEDIATION_KEY_FILE: ctx.serviceTls.proxy.keyFile,
          }
        : {}),
      // In the lab the proxy owns moat-gw's LAN side and nftables sends it intercepted traffic;
      // `moat dev` runs on the host, where it only listens on loopback and intercepts nothing.
      ...(ctx.socketDir
        ? { MOAT_PROXY_TRANSPARENT_HTTP_PORT: '3129', MOAT_PROXY_TRANSPARENT_TLS_PORT: '3130' }
        : {
            MOAT_PROXY_LISTEN_HOST: '127.0.0.1',
            MOAT_PROXY_TRANSPARENT_HTTP_PORT: '0',
            MOAT_PROXY_TRANSPARENT_TLS_PORT: '0',
          }),
    }),
  },
  {
    name: 'firewall',
    packageDir: 'services/firewall',
    entry: 'dist/main.js',
    defaultPorts: { http: 9403 },
    labOnly: true,
    env: (ctx) => ({
      ...sharedEnv(ctx),
      MOAT_FIREWALL_HTTP_PORT: String(ctx.ports.http),
      // the proxy's transparent ports in moat-gw (see the proxy entry)
      MOAT_FIREWALL_INTERCEPT_HTTP_PORT: '3129',
      MOAT_FIREWALL_INTERCEPT_TLS_PORT: '3130',
    }),
  },
  {
    name: 'qos',
    packageDir: 'services/qos',
    entry: 'dist/main.js',
    defaultPorts: { http: 9404 },
    labOnly: true,
    env: (ctx) => ({ ...sharedEnv(ctx), MOAT_QOS_HTTP_PORT: String(ctx.ports.http) }),
  },
  {
    name: 'tls-mediation',
    packageDir: 'services/tls-mediation',
    entry: 'dist/main.js',
    defaultPorts: { http: 9405, grpc: 50053, ca: 9406 },
    env: (ctx) => ({
      ...sharedEnv(ctx),
      MOAT_TLS_MEDIATION_HTTP_PORT: String(ctx.ports.http),
      MOAT_TLS_MEDIATION_GRPC_PORT: String(ctx.ports.grpc),
      MOAT_TLS_MEDIATION_CA_PORT: String(ctx.ports.ca),
      // the generated CA (key mode 0600 in a 0700 directory) survives restarts of the run
      MOAT_TLS_MEDIATION_DATA_DIR: join(ctx.stateDir, 'tls-mediation'),
      ...(ctx.serviceTls
        ? {
            MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE: ctx.serviceTls.mediation.certFile,
            MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE: ctx.serviceTls.mediation.keyFile,
            MOAT_TLS_MEDIATION_GRPC_CLIENT_CA_FILE: ctx.serviceTls.caFile,
          }
        : {}),
      // under `moat dev` only loopback; in the lab, the LAN fetches the CA from the gateway
      ...(ctx.socketDir
        ? {}
        : { MOAT_TLS_MEDIATION_GRPC_HOST: '127.0.0.1', MOAT_TLS_MEDIATION_CA_HOST: '127.0.0.1' }),
    }),
  },
  {
    name: 'av-scanner',
    packageDir: 'services/av-scanner',
    entry: 'dist/main.js',
    defaultPorts: { http: 9407, clamd: 3310 },
    requires: ['clamd'],
    env: (ctx) => ({
      ...sharedEnv(ctx),
      MOAT_AV_SCANNER_HTTP_PORT: String(ctx.ports.http),
      MOAT_AV_SCANNER_CLAMD_ADDRESS: `127.0.0.1:${ctx.ports.clamd ?? 3310}`,
      MOAT_AV_SCANNER_SIGNATURE_DIR: join(ctx.stateDir, 'clamd', 'db'),
      // the lab's test database is written once per run; its age says nothing about freshness
      MOAT_AV_SCANNER_MAX_SIGNATURE_AGE_HOURS: String(24 * 365),
      ...(ctx.socketDir ? {} : { MOAT_AV_SCANNER_HTTP_HOST: '127.0.0.1' }),
    }),
    // clamd with the project's test signatures (no freshclam offline): its config is written first
    sidecars: (ctx) => {
      const dir = join(ctx.stateDir, 'clamd');
      const port = ctx.ports.clamd ?? 3310;
      const prepare = [
        process.execPath,
        join(repoRoot(), 'services/av-scanner/dist/clamd-config-main.js'),
        dir,
        `127.0.0.1:${port}`,
      ];
      return [
        {
          name: 'clamd',
          command: 'sh',
          // exec: the recorded pid is clamd's own
          args: [
            '-c',
            `${prepare.map(shellQuote).join(' ')} && exec clamd -c ${shellQuote(join(dir, 'clamd.conf'))}`,
          ],
          ready: { kind: 'tcp', host: '127.0.0.1', port },
        },
      ];
    },
  },
];

const shellQuote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/** How to start a service: `node --enable-source-maps services/<name>/dist/main.js`, from the repo root (as the images do). */
export function serviceCommand(service: ServiceDefinition): { command: string; args: string[] } {
  return {
    command: process.execPath,
    args: ['--enable-source-maps', join(service.packageDir, service.entry)],
  };
}

/**
 * Turns the --services / --no-services flags into registry entries.
 * `selection`: undefined = all, false = none, string = comma-separated names.
 */
export function selectServices(
  selection: string | boolean | undefined,
  registry: readonly ServiceDefinition[] = SERVICES,
): ServiceDefinition[] {
  if (selection === false) return [];
  if (selection === undefined || selection === true) return [...registry];
  const names = selection
    .split(',')
    .map((name) => name.trim())
    .filter(Boolean);
  const unknown = names.filter((name) => !registry.some((service) => service.name === name));
  if (unknown.length > 0) {
    throw new CliError(`unknown service ${unknown.map((n) => `'${n}'`).join(', ')}`, {
      hint: `known services: ${registry.map((s) => s.name).join(', ')} (or --no-services for none)`,
      exitCode: 2,
    });
  }
  return registry.filter((service) => names.includes(service.name));
}

/** The services `moat dev` may start: it runs on the host, so none that own kernel state. */
export function selectDevServices(
  selection: string | boolean | undefined,
  registry: readonly ServiceDefinition[] = SERVICES,
): ServiceDefinition[] {
  const selected = selectServices(selection, registry);
  const labOnly = selected.filter((service) => service.labOnly);
  if (typeof selection === 'string' && labOnly.length > 0) {
    throw new CliError(`${labOnly.map((s) => s.name).join(', ')}: lab only`, {
      hint: 'these services change the kernel (nftables, qdiscs): run them in the lab with `moat lab up`, never on the host',
      exitCode: 2,
    });
  }
  return selected.filter((service) => !service.labOnly);
}

/** Fails before anything starts if a selected service has not been compiled yet. */
export function assertServicesBuilt(services: readonly ServiceDefinition[], root: string): void {
  const missing = services.filter((service) => !existsSync(join(root, service.packageDir, service.entry)));
  if (missing.length > 0) {
    throw new CliError(`not built: ${missing.map((s) => join(s.packageDir, s.entry)).join(', ')} missing`, {
      hint: 'run `npm run build` at the repository root, or leave them out with --services <names> / --no-services',
      exitCode: 2,
    });
  }
}
