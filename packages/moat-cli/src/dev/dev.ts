import { mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { styleText } from 'node:util';
import { CliError } from '../errors.js';
import { repoRoot } from '../paths.js';
import { requireExecutables } from '../preflight.js';
import { describeCheck, probeOnce, waitUntil } from '../probes.js';
import { ensureServiceTls, serviceTlsFiles } from '../service-tls.js';
import {
  assertServicesBuilt,
  type ServiceContext,
  type ServiceDefinition,
  serviceCommand,
} from '../services.js';
import { DevChild, type DevProcessSpec, describeExit } from './children.js';
import type { Paint } from './log-lines.js';
import { prefixColour } from './log-lines.js';
import { allPorts, type DevPorts, planDevPorts } from './ports.js';

/**
 * `moat dev`: NATS, Redis and the selected services as foreground children on
 * loopback. Starts them in order, each waiting for the previous to be ready;
 * stops them in reverse (services, then Redis, then NATS).
 */

/** The env var moatctl reads for the control address (printed as a hint). */
const MOATCTL_ADDR_ENV = 'MOAT_CONTROL_ADDR';
const HOST = '127.0.0.1';

export interface DevOptions {
  services: readonly ServiceDefinition[];
  /** The full registry: port slots follow registry order, whatever is selected. */
  registry: readonly ServiceDefinition[];
  basePort?: number;
  dir: string;
  readyTimeoutMs: number;
  stopTimeoutMs: number;
  logLevel: string;
  out?: NodeJS.WriteStream;
}

export function defaultDevDir(): string {
  return process.env.MOAT_DEV_DIR || join(repoRoot(), '.moat', 'dev');
}

export function devProcessSpecs(options: DevOptions, ports: DevPorts): DevProcessSpec[] {
  const natsStore = join(options.dir, 'nats');
  const redisDir = join(options.dir, 'redis');
  const specs: DevProcessSpec[] = [
    {
      name: 'nats',
      command: 'nats-server',
      args: ['-js', '-sd', natsStore, '-a', HOST, '-p', String(ports.nats), '-m', String(ports.natsMonitor)],
      cwd: options.dir,
      ready: { kind: 'http', url: `http://${HOST}:${ports.natsMonitor}/healthz` },
    },
    {
      name: 'redis',
      command: 'redis-server',
      args: [
        '--port',
        String(ports.redis),
        '--bind',
        HOST,
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        redisDir,
      ],
      cwd: options.dir,
      ready: { kind: 'redis', host: HOST, port: ports.redis },
    },
  ];
  const expectedServices = options.services.map((s) => s.name);
  for (const service of options.services) {
    const servicePorts = ports.services[service.name] ?? service.defaultPorts;
    const { command, args } = serviceCommand(service);
    const context: ServiceContext = {
      natsUrl: `nats://${HOST}:${ports.nats}`,
      redisUrl: `redis://${HOST}:${ports.redis}`,
      ports: servicePorts,
      expectedServices,
      logLevel: options.logLevel,
      stateDir: options.dir,
      peers: ports.services,
      serviceTls: serviceTlsFiles(join(options.dir, 'service-tls')),
    };
    for (const sidecar of service.sidecars?.(context) ?? []) specs.push({ ...sidecar, cwd: options.dir });
    specs.push({
      name: service.name,
      command,
      args,
      cwd: repoRoot(),
      env: service.env(context),
      ready: { kind: 'http', url: `http://${HOST}:${servicePorts.http}/readyz` },
    });
  }
  return specs;
}

/** Fails fast, naming the port, instead of letting a child die on EADDRINUSE. */
async function assertPortsFree(ports: DevPorts, relevant: (name: string) => boolean): Promise<void> {
  for (const { name, port } of allPorts(ports).filter((p) => relevant(p.name))) {
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, HOST, () => server.close(() => resolve(true)));
    });
    if (!free) {
      throw new CliError(`port ${port} (${name}) is already in use on ${HOST}`, {
        hint: 'stop whatever uses it (another `moat dev`?) or shift every port with --base-port <port>',
        exitCode: 2,
      });
    }
  }
}

/** Runs until stopped; resolves with the exit code for the CLI (0 on a requested stop). */
export async function runDev(options: DevOptions): Promise<number> {
  requireExecutables(['nats-server', 'redis-server', ...options.services.flatMap((s) => s.requires ?? [])]);
  assertServicesBuilt(options.services, repoRoot());
  const ports = planDevPorts(options.registry, options.basePort);
  const selected = new Set(['nats', 'redis', ...options.services.map((s) => s.name)]);
  await assertPortsFree(ports, (portName) => selected.has(portName.split(' ')[0] ?? ''));

  // A fresh store each run: dev state is disposable (Redis is not persisted either).
  for (const sub of ['nats', 'redis']) {
    rmSync(join(options.dir, sub), { recursive: true, force: true });
    mkdirSync(join(options.dir, sub), { recursive: true });
  }

  await ensureServiceTls(join(options.dir, 'service-tls'));
  const specs = devProcessSpecs(options, ports);
  const out = options.out ?? process.stdout;
  const paint: Paint = (format, text) => styleText(format, text, { stream: out, validateStream: true });
  const write = (text: string) => out.write(text);
  const labelWidth = Math.max(4, ...specs.map((s) => s.name.length));
  const say = (text: string) => write(`${paint('bold', '[moat]'.padEnd(labelWidth + 2))} ${text}\n`);

  const children: DevChild[] = [];
  const startup = new AbortController();
  let resolveStopped: (code: number) => void = () => {};
  const stopped = new Promise<number>((resolve) => {
    resolveStopped = resolve;
  });
  let stopping = false;

  /** Stops every started child, newest first; the first caller's exit code wins. */
  const stopAll = async (code: number): Promise<void> => {
    if (stopping) return;
    stopping = true;
    startup.abort();
    for (const child of [...children].reverse()) {
      if (child.hasExited) continue;
      const outcome = await child.stop(options.stopTimeoutMs);
      say(`${child.spec.name} stopped${outcome === 'killed' ? ' (needed SIGKILL)' : ''}`);
    }
    resolveStopped(code);
  };

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      say(paint('red', `${signal} again: killing everything now`));
      for (const child of children) child.killNow();
      return;
    }
    say(`${signal}: stopping (services, then redis, then nats; again to kill now)`);
    void stopAll(0);
  };
  const killAllOnExit = () => {
    for (const child of children) child.killNow();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAllOnExit);

  try {
    for (const [index, spec] of specs.entries()) {
      if (stopping) break;
      const child = new DevChild(spec, { write, paint, labelWidth, colour: prefixColour(index) });
      children.push(child);
      say(`started ${spec.name} (pid ${child.pid})`);
      void child.exited.then((info) => {
        if (child.stopRequested) return;
        say(
          paint(
            ['red', 'bold'],
            `✗ ${spec.name} (pid ${child.pid}) ${describeExit(info)} unexpectedly: stopping everything`,
          ),
        );
        void stopAll(1);
      });

      const started = Date.now();
      const ready = await waitUntil(() => probeOnce(spec.ready), {
        timeoutMs: options.readyTimeoutMs,
        giveUp: () => child.hasExited,
        signal: startup.signal,
      });
      if (stopping) break;
      if (!ready) {
        say(
          paint(
            ['red', 'bold'],
            `✗ ${spec.name} not ready after ${options.readyTimeoutMs / 1000}s (${describeCheck(spec.ready)})`,
          ),
        );
        void stopAll(1);
        break;
      }
      say(`${paint('green', '✓')} ${spec.name} ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    }
    if (!stopping) printSummary(say, ports, options.services);
    return await stopped;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAllOnExit);
  }
}

function printSummary(
  say: (text: string) => void,
  ports: DevPorts,
  services: readonly ServiceDefinition[],
): void {
  say(
    `moat dev is ready: NATS nats://${HOST}:${ports.nats} (monitor http://${HOST}:${ports.natsMonitor}), Redis redis://${HOST}:${ports.redis}`,
  );
  for (const service of services) {
    const p = ports.services[service.name];
    if (!p) continue;
    say(
      `  ${service.name}: http://${HOST}:${p.http}${p.grpc === undefined ? '' : `  gRPC ${HOST}:${p.grpc}`}`,
    );
  }
  const control = services.some((s) => s.name === 'control') ? ports.services.control : undefined;
  if (control?.grpc !== undefined) {
    say(
      `moatctl address: ${HOST}:${control.grpc}   e.g. ${MOATCTL_ADDR_ENV}=${HOST}:${control.grpc} moatctl status`,
    );
  } else {
    say('moatctl: control is not running in this dev runtime (started without it)');
  }
  say('Ctrl-C stops everything');
}
