import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { distFile, repoRoot } from '../paths.js';
import { serviceTlsFiles } from '../service-tls.js';
import { type ServiceContext, type ServiceDefinition, serviceCommand } from '../services.js';
import { BAD_TLS_VARIANTS } from './bad-tls.js';
import { labPaths } from './state.js';
import type { LabProcessSpec } from './supervise.js';
import { LAB_ADDRESSES, LAB_NAMESPACES } from './topology.js';

/** What the lab runs, in start order: infrastructure first, then the Moat services that need it. */

export const LAB_PORTS = {
  nats: 4222,
  natsMonitor: 8222,
  redis: 6379,
  origin: 80,
  originTls: 443,
  otlp: 4318,
} as const;

/** The collector scripts/lib/otelcol/build.sh builds (setup runs it); MOAT_OTELCOL_BIN overrides. */
export const otelCollectorBinary = () => process.env.MOAT_OTELCOL_BIN ?? '/opt/moat/otelcol/otelcol-moat';

const originAddresses = (port: number) => [
  `${LAB_ADDRESSES.origin}:${port}`,
  `${LAB_ADDRESSES.wanGw}:${port}`,
  ...(existsSync('/proc/sys/net/ipv6') ? [`[${LAB_ADDRESSES.origin6}]:${port}`] : []),
];

/** The addresses the origin server listens on inside moat-wan: plain HTTP… */
export const ORIGIN_LISTEN = originAddresses(LAB_PORTS.origin);
/** …and HTTPS, with the lab certificate (every LAB_HOSTNAMES name, signed by the lab CA). */
export const ORIGIN_TLS_LISTEN = originAddresses(LAB_PORTS.originTls);

export function labProcessSpecs(
  services: readonly ServiceDefinition[],
  stateRoot?: string,
): LabProcessSpec[] {
  const paths = labPaths(stateRoot);
  const gw = LAB_NAMESPACES.gw;
  const specs: LabProcessSpec[] = [
    {
      name: 'nats',
      namespace: gw,
      command: 'nats-server',
      args: [
        '-js',
        '-sd',
        paths.natsStore,
        '-a',
        '0.0.0.0',
        '-p',
        String(LAB_PORTS.nats),
        '-m',
        String(LAB_PORTS.natsMonitor),
      ],
      cwd: paths.root,
      ready: { kind: 'http', url: `http://127.0.0.1:${LAB_PORTS.natsMonitor}/healthz` },
    },
    {
      name: 'redis',
      namespace: gw,
      command: 'redis-server',
      // Bound to every address of moat-gw only: the namespace is isolated, so that is safe.
      args: [
        '--port',
        String(LAB_PORTS.redis),
        '--bind',
        '0.0.0.0',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        paths.redisDir,
        '--protected-mode',
        'no',
      ],
      cwd: paths.root,
      ready: { kind: 'redis', host: '127.0.0.1', port: LAB_PORTS.redis },
    },
    {
      name: 'origin',
      namespace: LAB_NAMESPACES.wan,
      command: process.execPath,
      args: [
        '--enable-source-maps',
        distFile('lab/origin-main.js'),
        '--cert',
        paths.originCert,
        '--key',
        paths.originKey,
        ...ORIGIN_TLS_LISTEN.flatMap((address) => ['--tls', address]),
        ...ORIGIN_LISTEN,
      ],
      cwd: paths.root,
      ready: { kind: 'http', url: `http://${LAB_ADDRESSES.origin}:${LAB_PORTS.origin}/healthz` },
    },
  ];

  const lastBadTls = BAD_TLS_VARIANTS[BAD_TLS_VARIANTS.length - 1];
  specs.push({
    name: 'bad-tls',
    namespace: LAB_NAMESPACES.wan,
    command: process.execPath,
    args: ['--enable-source-maps', distFile('lab/bad-tls-main.js'), paths.root],
    cwd: paths.root,
    // servers start in list order: the last one listening means all are
    ready: { kind: 'tcp', host: lastBadTls?.address ?? LAB_ADDRESSES.origin, port: LAB_PORTS.originTls },
  });

  // The lab's trace receiver: every service exports its spans to it (see scripts/lib/otelcol/lab.yaml).
  const collector = otelCollectorBinary();
  const tracing = existsSync(collector);
  if (tracing) {
    specs.push({
      name: 'otelcol',
      namespace: gw,
      command: collector,
      args: ['--config', join(repoRoot(), 'scripts/lib/otelcol/lab.yaml')],
      cwd: paths.root,
      ready: { kind: 'tcp', host: '127.0.0.1', port: LAB_PORTS.otlp },
    });
  }

  const expectedServices = services.map((service) => service.name);
  for (const service of services) {
    const { command, args } = asUser(service, serviceCommand(service));
    const context: ServiceContext = {
      natsUrl: `nats://127.0.0.1:${LAB_PORTS.nats}`,
      redisUrl: `redis://127.0.0.1:${LAB_PORTS.redis}`,
      ports: service.defaultPorts,
      expectedServices,
      logLevel: 'info',
      socketDir: paths.root,
      stateDir: paths.root,
      peers: Object.fromEntries(services.map((s) => [s.name, s.defaultPorts])),
      upstreamCaFile: paths.caCert,
      serviceTls: serviceTlsFiles(paths.serviceTls),
    };
    for (const sidecar of service.sidecars?.(context) ?? []) {
      specs.push({ ...sidecar, namespace: gw, cwd: paths.root });
    }
    specs.push({
      name: service.name,
      namespace: gw,
      command,
      args,
      cwd: repoRoot(),
      env: {
        // exported within half a second, so a block page's trace id can be looked up right away
        ...(tracing
          ? {
              OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${LAB_PORTS.otlp}`,
              OTEL_BSP_SCHEDULE_DELAY: '500',
            }
          : {}),
        ...service.env(context),
      },
      ready: { kind: 'http', url: `http://127.0.0.1:${service.defaultPorts.http}/readyz` },
    });
  }
  return specs;
}

/** Who unprivileged lab services run as. */
export const UNPRIVILEGED = { user: 'nobody', group: 'nogroup' } as const;

/** The unprivileged user's uid, from /etc/passwd (65534 on Debian). */
export function unprivilegedUid(): number {
  const line = new RegExp(`^${UNPRIVILEGED.user}:[^:]*:(\\d+):`, 'm').exec(
    readFileSync('/etc/passwd', 'utf8'),
  );
  if (!line?.[1])
    throw new Error(`no user ${UNPRIVILEGED.user} in /etc/passwd: the lab runs the proxy as that user`);
  return Number(line[1]);
}

/** An unprivileged service runs as nobody (setpriv execs in place: the recorded pid stays the service's). */
function asUser(service: ServiceDefinition, run: { command: string; args: string[] }) {
  if (!service.unprivileged) return run;
  return {
    command: 'setpriv',
    args: [
      `--reuid=${UNPRIVILEGED.user}`,
      `--regid=${UNPRIVILEGED.group}`,
      '--clear-groups',
      '--',
      run.command,
      ...run.args,
    ],
  };
}
