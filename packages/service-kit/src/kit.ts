import { type Bus, connectBus } from '@moat/bus';
import { redactUrl } from '@moat/config';
import { createLogger, type Logger } from '@moat/log';
import { followPolicy, type PolicyFollower, type PolicyRecord, PolicyStore } from '@moat/policy';
import { startTelemetry, type Telemetry } from '@moat/telemetry';
import { Redis } from 'ioredis';
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { BaseConfig } from './config.js';
import { createHealthServer, type HealthServer } from './health.js';
import { type QueryHandler, serveQueries } from './query.js';
import { installShutdown, runShutdownSteps, type ShutdownStep } from './shutdown.js';
import { type ServiceStatus, serveStatus } from './status.js';
import { isWorkerProcess, serveSupervisor } from './workers.js';

export interface ServiceKitOptions {
  service: string;
  version: string;
  config: BaseConfig;
  /** Applies a new policy to the service's engine; throwing keeps the previous one. */
  applyPolicy: (record: PolicyRecord) => Promise<void> | void;
  /** Service-specific status details (queue depth, signature age, …). */
  details?: () => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** Read-only questions this service answers (`moatctl show …`), by name; see query.ts. */
  queries?: Record<string, QueryHandler>;
  /** Install SIGTERM/SIGINT handling (off in tests). Default true. */
  handleSignals?: boolean;
  /**
   * The service's own logger and metrics registry, when its engine needs them before the kit
   * starts (the first policy is applied during start). Default: created by the kit.
   */
  log?: Logger;
  registry?: Registry;
}

/** Everything a Moat service shares: logging, telemetry, NATS, Redis, policy, health, metrics, status. */
export interface ServiceKit {
  readonly log: Logger;
  readonly bus: Bus;
  readonly redis: Redis;
  readonly store: PolicyStore;
  readonly registry: Registry;
  readonly health: HealthServer;
  readonly policy: PolicyFollower;
  /** The port the health/metrics server listens on (0 in a worker process: its supervisor serves it). */
  readonly httpPort: number;
  /** In a worker process, tells the supervisor this worker serves; elsewhere does nothing. */
  announceReady(): void;
  status(): Promise<ServiceStatus>;
  /** Runs before NATS and Redis close (e.g. stop the service's own servers). */
  onShutdown(step: ShutdownStep): void;
  /** The whole graceful shutdown, in order; what SIGTERM runs. */
  shutdown(): Promise<void>;
}

/**
 * Starts the shared parts of a service in the order the style guide fixes: logger and telemetry
 * first, then clients, then the policy (catching up on the current version), then the health
 * server. Fails fast, naming what could not be reached.
 */
export async function startServiceKit(opts: ServiceKitOptions): Promise<ServiceKit> {
  const { config, service } = opts;
  const log = opts.log ?? createLogger({ service, level: config.logLevel });
  const telemetry: Telemetry = startTelemetry({ serviceName: service, serviceVersion: opts.version });
  const startedAt = new Date().toISOString();

  const registry = opts.registry ?? new Registry();
  registry.setDefaultLabels({ service });
  collectDefaultMetrics({ register: registry });
  // Across worker processes (workers.ts): the oldest version any worker runs, the slowest apply.
  const policyVersion = new Gauge({
    name: 'moat_policy_applied_version',
    help: 'Policy version this instance runs',
    registers: [registry],
    aggregator: 'min',
  });
  const policyLatency = new Gauge({
    name: 'moat_policy_apply_latency_seconds',
    help: 'Time from storing the applied policy version to this instance applying it',
    registers: [registry],
    aggregator: 'max',
  });

  const redis = new Redis(config.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    connectionName: `${service}@${config.instanceId}`,
  });
  redis.on('error', (err) => log.warn({ err: err.message }, 'Redis connection problem'));
  // A failed start must leave nothing behind: ioredis would otherwise reconnect forever.
  const abandon = async (message: string): Promise<never> => {
    redis.disconnect();
    await telemetry.shutdown().catch(() => undefined);
    throw new Error(message);
  };
  try {
    await redis.connect();
  } catch (err) {
    await abandon(
      `cannot connect to Redis at ${redactUrl(config.redisUrl)} (MOAT_REDIS_URL): ${(err as Error).message}`,
    );
  }
  let bus!: Bus;
  try {
    bus = await connectBus({ servers: config.natsUrl, name: `${service}@${config.instanceId}`, log });
  } catch (err) {
    await abandon(
      `cannot connect to NATS at ${redactUrl(config.natsUrl)} (MOAT_NATS_URL): ${(err as Error).message}`,
    );
  }

  const store = new PolicyStore(redis);
  const policy = await followPolicy({
    bus,
    store,
    log,
    apply: async (record) => {
      await opts.applyPolicy(record);
      policyVersion.set(record.version);
      policyLatency.set(Math.max(0, Date.now() - Date.parse(record.createdAt)) / 1000);
    },
  });

  const health = createHealthServer(registry);
  health.addCheck('redis', async () => ((await redis.ping()) === 'PONG' ? true : 'no PONG'));
  health.addCheck('nats', () => (bus.nc.isClosed() ? 'closed' : bus.nc.isDraining() ? 'draining' : true));
  health.addCheck('policy', () => {
    const s = policy.state();
    return s.failed && !s.applied ? `policy ${s.failed.version} failed: ${s.failed.error}` : true;
  });
  // In a worker process the supervisor owns the health/metrics port and asks this process over IPC.
  const httpPort = isWorkerProcess() ? 0 : await health.listen(config.httpPort, config.httpHost);

  const status = async (): Promise<ServiceStatus> => {
    const { ready, checks } = await health.readiness();
    return {
      service,
      instance: config.instanceId,
      version: opts.version,
      startedAt,
      healthy: true,
      ready,
      checks,
      policy: policy.state(),
      ...(opts.details ? { details: await opts.details() } : {}),
    };
  };
  const statusSubs = [
    ...serveStatus(bus, service, status),
    ...serveQueries(bus, { service, instance: config.instanceId }, opts.queries ?? {}, log),
  ];

  const ownSteps: ShutdownStep[] = [];
  // Order: stop being ready, stop the service's own servers (they may still publish while
  // finishing calls), then drain NATS, close Redis and the health server, telemetry last.
  const steps = (): ShutdownStep[] => [
    { name: 'readiness off', run: () => health.setShuttingDown() },
    ...ownSteps,
    {
      name: 'stop following policy',
      run: () => {
        policy.stop();
        for (const s of statusSubs) s.unsubscribe();
      },
    },
    { name: 'drain NATS', run: () => bus.drain() },
    { name: 'close Redis', run: async () => void (await redis.quit()) },
    { name: 'close health server', run: () => health.close() },
    { name: 'flush telemetry', run: () => telemetry.shutdown() },
  ];
  const shutdown = () => runShutdownSteps(log, steps());
  // A worker stops when its supervisor says so (SIGTERM); Ctrl-C in a terminal reaches the whole
  // process group, and the supervisor's SIGTERM would then count as a second signal and cut the drain.
  if (opts.handleSignals !== false)
    installShutdown(log, steps, undefined, isWorkerProcess() ? ['SIGTERM'] : ['SIGTERM', 'SIGINT']);
  const supervisor = serveSupervisor({
    registry,
    readiness: () => health.readiness(),
    onOrphaned: () => {
      log.error('the supervisor is gone; this worker stops');
      void shutdown().then(() => process.exit(1));
    },
  });

  log.info({ httpPort, policyVersion: policy.state().applied?.version ?? 0 }, `${service} kit started`);
  return {
    log,
    bus,
    redis,
    store,
    registry,
    health,
    policy,
    httpPort,
    announceReady: () => supervisor.ready(),
    status,
    onShutdown: (step) => void ownSteps.push(step),
    shutdown,
  };
}
