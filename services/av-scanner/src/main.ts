// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { publishEvent } from '@moat/bus';
import { announceBuildTime, ClamdClient } from '@moat/clamav';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import { ANNOUNCE_EVERY_MS, ensureScanQueue, SCAN_CONSUMER, SCAN_STREAM, VerdictCache } from '@moat/scan';
import { every, startServiceKit } from '@moat/service-kit';
import { Registry } from 'prom-client';
import { loadAvScannerConfig } from './config.js';
import { ClamdEngine } from './engine.js';
import { verdictEvent } from './events.js';
import { createAvMetrics } from './metrics.js';
import { ScanWorker } from './worker.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';
/** clamd may still be loading its database when the worker starts (the full database takes ~20 s). */
const WAIT_FOR_CLAMD_MS = 60_000;

async function main() {
  const config = loadAvScannerConfig();
  const log = createLogger({ service: 'av-scanner', level: config.logLevel });
  const registry = new Registry();
  const clamd = new ClamdClient(config.clamdAddress, { timeoutMs: config.scanTimeoutMs });
  let cache: VerdictCache | undefined;
  const engine = new ClamdEngine({
    clamd,
    signatureDir: config.signatureDir,
    maxSignatureAgeMs: config.maxSignatureAgeHours * 3_600_000,
    log,
    onVersion: () => announce(),
  });
  // stale signatures are not announced (nor renewed): proxies then stop answering from their verdicts
  const announce = async () => {
    const database = engine.database;
    if (!cache || !database || !engine.signaturesFresh()) return;
    const builtAt = announceBuildTime(database);
    try {
      if (!(await cache.announceVersion(database.version, builtAt)))
        log.warn(
          { signatures: database.version, builtAt: builtAt.toISOString() },
          'newer signatures are announced by another worker: this one lags behind (is its freshclam working?)',
        );
    } catch (err) {
      // proxies keep the last announcement until it expires; the next renewal tries again
      log.warn({ err: (err as Error).message }, 'could not announce the signature version in Redis');
    }
  };
  let queueDepth: { pending: number; scanning: number; workersWaiting: number; readAt: Date } | undefined;
  const metrics = createAvMetrics(registry, engine, () =>
    queueDepth ? queueDepth.pending + queueDepth.scanning : undefined,
  );
  let worker: ScanWorker | undefined;

  const kit = await startServiceKit({
    service: 'av-scanner',
    version: VERSION,
    config,
    log,
    registry,
    // workers scan whatever they are given: what to scan is the proxy's policy decision
    applyPolicy: () => undefined,
    details: () => ({
      clamd: {
        address:
          'path' in config.clamdAddress
            ? config.clamdAddress.path
            : `${config.clamdAddress.host}:${config.clamdAddress.port}`,
        up: engine.clamdUp,
        ...(engine.clamdVersion ? { version: engine.clamdVersion } : {}),
      },
      signatures: engine.database
        ? {
            version: engine.database.version,
            builtAt: engine.database.builtAt.toISOString(),
            ageHours: Number(((engine.signatureAgeSeconds() ?? 0) / 3600).toFixed(2)),
            maxAgeHours: config.maxSignatureAgeHours,
            files: engine.database.files.map((f) => f.name),
            ...(engine.reloadingSince ? { reloadingSince: engine.reloadingSince.toISOString() } : {}),
          }
        : undefined,
      selfTest: engine.selfTest,
      concurrency: config.concurrency,
      scanning: worker?.inFlight ?? 0,
      ...(queueDepth ? { queue: queueDepth } : {}),
    }),
  });
  cache = new VerdictCache(kit.redis);
  // The checks go in before the wait for clamd: the health server already answers, and /readyz
  // must not say 200 while clamd is still loading (a rolling update would count this pod ready).
  kit.health.addCheck('clamd', async () => ((await engine.probe()) ? true : engine.readiness().clamd));
  kit.health.addCheck('self-test', () => engine.readiness().selfTest);
  kit.health.addCheck('signatures', () => engine.readiness().signatures);
  await engine.start(WAIT_FOR_CLAMD_MS);

  const jsm = await kit.bus.jetstreamManager();
  await ensureScanQueue(jsm);
  const readQueue = async () => {
    const info = await jsm.consumers.info(SCAN_STREAM, SCAN_CONSUMER);
    queueDepth = {
      pending: info.num_pending,
      scanning: info.num_ack_pending,
      workersWaiting: info.num_waiting,
      readAt: new Date(),
    };
  };
  await readQueue().catch(() => undefined);

  worker = new ScanWorker({
    nc: kit.bus.nc,
    engine,
    cache,
    metrics,
    log,
    instance: config.instanceId,
    concurrency: config.concurrency,
    scanTimeoutMs: config.scanTimeoutMs,
    onVerdict: (meta, verdict, traceId) =>
      publishEvent(kit.bus, verdictEvent(meta, verdict, traceId, config.instanceId), { validate: false }),
  });
  await worker.start();

  const stopChecks = [
    every(config.signatureCheckSeconds, () => engine.checkSignatures()),
    every(2, readQueue),
    // renews the announcement before it expires
    every(ANNOUNCE_EVERY_MS / 1000, announce),
  ];
  kit.onShutdown({
    name: 'finish the scans in hand',
    run: async () => {
      for (const stop of stopChecks) stop();
      await worker?.stop();
    },
  });
  kit.log.info(
    {
      httpPort: kit.httpPort,
      clamd: engine.readiness().clamd === true ? 'up' : 'down',
      signatures: engine.database?.version,
      concurrency: config.concurrency,
    },
    'av-scanner ready',
  );
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `av-scanner failed to start: ${(err as Error).message}`,
  );
  process.exit(1);
});
