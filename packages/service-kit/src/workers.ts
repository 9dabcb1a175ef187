/**
 * One service, several worker processes (node:cluster): JavaScript runs on one core per process, so
 * a data-path service that must use every core of its node (the proxy) runs as a supervisor and N
 * workers. Each worker is a whole service instance (its own NATS and Redis clients, policy, status
 * replies) and binds the service's ports itself with SO_REUSEPORT, so the kernel spreads connections
 * and no connection passes through the supervisor. The supervisor owns the health/metrics port:
 * `/metrics` sums the workers' series, `/readyz` is ready when every worker is, `/healthz` is the
 * supervisor itself. A worker that dies is replaced, with a growing delay if it keeps dying.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from '@moat/log';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import { createHealthServer } from './health.js';

const READINESS_REQ = 'moat:readiness-req';
const READINESS_RES = 'moat:readiness-res';
const READY = 'moat:ready';
/** How long /readyz waits for a worker's answer. */
const READINESS_TIMEOUT_MS = 1000;
/** How long a stopping worker gets to drain before it is killed. */
const STOP_GRACE_MS = 30_000;
const RESTART_DELAY_MIN_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;
/** A worker that lived this long resets the restart delay. */
const STABLE_AFTER_MS = 60_000;

export interface SupervisorOptions {
  service: string;
  workers: number;
  httpHost: string;
  httpPort: number;
  log: Logger;
}

export interface Supervisor {
  readonly httpPort: number;
  /** Workers that are alive and said they are ready. */
  readyWorkers(): number;
  /** Resolves once every worker reported ready the first time (or rejects if one dies first). */
  ready(): Promise<void>;
  stop(): Promise<void>;
}

interface Slot {
  index: number;
  worker?: Worker;
  ready: boolean;
  startedAt: number;
  restartDelay: number;
}

/** True in a process that cluster forked as a worker. */
export const isWorkerProcess = (): boolean => cluster.isWorker;

/** Index (1..N) of this worker, from the environment the supervisor gave it. */
export function workerIndex(): number | undefined {
  const raw = process.env.MOAT_WORKER_INDEX;
  return raw ? Number(raw) : undefined;
}

/**
 * The worker side: serves the supervisor's metrics and readiness requests from this process's
 * registry and health checks, says when it is ready, and stops when the supervisor is gone.
 */
export function serveSupervisor(opts: {
  registry: Registry;
  readiness: () => Promise<{ ready: boolean; checks: Record<string, string> }>;
  onOrphaned: () => void;
}): { ready(): void } {
  if (!cluster.isWorker) return { ready: () => undefined };
  new AggregatorRegistry(); // installs prom-client's metrics responder in this worker
  AggregatorRegistry.setRegistries([opts.registry]);
  process.on('message', (message: { type?: string; id?: number }) => {
    if (message?.type !== READINESS_REQ) return;
    void opts.readiness().then(
      (r) => process.send?.({ type: READINESS_RES, id: message.id, ...r }),
      (err: Error) =>
        process.send?.({ type: READINESS_RES, id: message.id, ready: false, checks: { error: err.message } }),
    );
  });
  // the supervisor died (even by SIGKILL): a worker on its own would hold the ports forever
  process.on('disconnect', opts.onOrphaned);
  return { ready: () => process.send?.({ type: READY }) };
}

/** Starts the workers (cluster.fork of this same script) and the health/metrics server. */
export async function superviseWorkers(opts: SupervisorOptions): Promise<Supervisor> {
  const { log, service } = opts;
  const own = new Registry();
  own.setDefaultLabels({ service });
  const aliveGauge = new Gauge({
    name: `moat_${service.replaceAll('-', '_')}_workers`,
    help: 'Worker processes, by state',
    labelNames: ['state'] as const,
    registers: [own],
  });
  const restarts = new Counter({
    name: `moat_${service.replaceAll('-', '_')}_worker_restarts_total`,
    help: 'Workers that exited unexpectedly and were replaced',
    registers: [own],
  });
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  /** Every worker was ready once; from then on a dead worker is replaced instead of failing the start. */
  let started = false;
  const slots: Slot[] = Array.from({ length: opts.workers }, (_, i) => ({
    index: i + 1,
    ready: false,
    startedAt: 0,
    restartDelay: RESTART_DELAY_MIN_MS,
  }));
  const updateGauge = () => {
    aliveGauge.set({ state: 'ready' }, slots.filter((s) => s.worker && s.ready).length);
    aliveGauge.set({ state: 'starting' }, slots.filter((s) => s.worker && !s.ready).length);
    aliveGauge.set({ state: 'down' }, slots.filter((s) => !s.worker).length);
  };

  const firstReady = Promise.withResolvers<void>();

  const fork = (slot: Slot) => {
    const worker = cluster.fork({ MOAT_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.ready = false;
    slot.startedAt = Date.now();
    updateGauge();
    worker.on('message', (message: { type?: string }) => {
      if (message?.type !== READY) return;
      slot.ready = true;
      updateGauge();
      log.info({ worker: slot.index, pid: worker.process.pid }, 'worker ready');
      if (!started && slots.every((s) => s.ready)) {
        started = true;
        firstReady.resolve();
      }
    });
    worker.on('exit', (code, signal) => {
      slot.worker = undefined;
      slot.ready = false;
      updateGauge();
      if (stopping) return;
      if (!started) {
        // dying before every worker was ever ready is a configuration problem: fail the start loudly
        firstReady.reject(
          new Error(
            `${service} worker ${slot.index} exited before it was ready (${signal ?? `exit code ${code}`}); see its log above`,
          ),
        );
        return;
      }
      restarts.inc();
      if (Date.now() - slot.startedAt > STABLE_AFTER_MS) slot.restartDelay = RESTART_DELAY_MIN_MS;
      log.error(
        { worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: slot.restartDelay },
        'worker exited unexpectedly; starting a new one',
      );
      setTimeout(() => {
        if (!stopping) fork(slot);
      }, slot.restartDelay).unref();
      slot.restartDelay = Math.min(slot.restartDelay * 2, RESTART_DELAY_MAX_MS);
    });
  };

  let requestId = 0;
  const askReadiness = (slot: Slot): Promise<true | string> => {
    const worker = slot.worker;
    if (!worker) return Promise.resolve('not running');
    if (!slot.ready) return Promise.resolve('starting');
    const id = ++requestId;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        worker.off('message', onMessage);
        resolve('no answer');
      }, READINESS_TIMEOUT_MS);
      const onMessage = (m: {
        type?: string;
        id?: number;
        ready?: boolean;
        checks?: Record<string, string>;
      }) => {
        if (m?.type !== READINESS_RES || m.id !== id) return;
        clearTimeout(timer);
        worker.off('message', onMessage);
        const failing = Object.entries(m.checks ?? {}).filter(([, v]) => v !== 'ok');
        resolve(m.ready ? true : failing.map(([k, v]) => `${k}: ${v}`).join('; ') || 'not ready');
      };
      worker.on('message', onMessage);
      worker.send({ type: READINESS_REQ, id });
    });
  };

  // /readyz: every worker answers ready; /metrics: the workers' series summed, then the supervisor's own
  const health = createHealthServer({
    contentType: own.contentType,
    metrics: async () => `${await aggregator.clusterMetrics()}${await own.metrics()}`,
  });
  for (const slot of slots) health.addCheck(`worker-${slot.index}`, () => askReadiness(slot));
  const httpPort = await health.listen(opts.httpPort, opts.httpHost);

  for (const slot of slots) fork(slot);
  log.info({ workers: opts.workers, httpPort }, `${service} supervisor started`);

  return {
    httpPort,
    readyWorkers: () => slots.filter((s) => s.worker && s.ready).length,
    ready: () => firstReady.promise,
    async stop() {
      stopping = true;
      health.setShuttingDown();
      const exits = slots.map((slot) => {
        const worker = slot.worker;
        if (!worker) return Promise.resolve();
        return new Promise<void>((resolve) => {
          const kill = setTimeout(() => worker.process.kill('SIGKILL'), STOP_GRACE_MS);
          worker.once('exit', () => {
            clearTimeout(kill);
            resolve();
          });
          worker.process.kill('SIGTERM');
        });
      });
      await Promise.all(exits);
      await health.close();
    },
  };
}

/** Sends a signal to every live worker (e.g. SIGHUP: reload lists). */
export function signalWorkers(signal: NodeJS.Signals): void {
  for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
}
