/**
 * av-scanner as it runs: real NATS (JetStream work queue and object store), Redis, and Debian's clamd
 * with the project's test database; worker processes started and killed like pods. The proxy's side
 * is the real ScanClient from @moat/scan.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus } from '@moat/bus';
import { EICAR, infectedSamples } from '@moat/clamav';
import { startClamd, type TestClamd } from '@moat/clamav/testing';
import { createLogger, type MoatEvent, moatEventSchema } from '@moat/log';
import {
  ensureScanQueue,
  SCAN_BODIES_BUCKET,
  SCAN_CONSUMER,
  SCAN_HEADER,
  SCAN_STREAM,
  SCAN_SUBJECT,
  ScanClient,
} from '@moat/scan';
import {
  type ManagedProcess,
  type NatsServer,
  type RedisServer,
  runCommand,
  startNats,
  startRedis,
  waitFor,
} from '@moat/testkit';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { startAvScanner } from './testing.js';

const SCAN_CHECK = fileURLToPath(new URL('./scan-check-main.js', import.meta.url));

describe('av-scanner service', () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let redisClient: Redis;
  let clamd: TestClamd;
  let bus: Bus;
  let client: ScanClient;
  const workers = new Map<string, { proc: ManagedProcess; port: number }>();
  const events: MoatEvent[] = [];

  async function startWorker(name: string, extraEnv: Record<string, string> = {}, waitReady = true) {
    const { proc, httpPort: port } = await startAvScanner({
      natsUrl: nats.url,
      redisUrl: redis.url,
      clamd,
      name,
      env: { MOAT_AV_SCANNER_SIGNATURE_CHECK_SECONDS: '0.5', ...extraEnv },
      waitReady,
    });
    workers.set(name, { proc, port });
    return { proc, port };
  }

  async function stopWorker(name: string, signal?: 'SIGKILL') {
    const w = workers.get(name);
    if (!w) return;
    if (signal) w.proc.child.kill(signal);
    await w.proc.stop();
    workers.delete(name);
  }

  const scan = (content: Buffer, timeoutMs = 10_000) =>
    client.scan({ content, timeoutMs, direction: 'download', url: 'http://test.example/file' });

  before(async () => {
    nats = await startNats();
    redis = await startRedis();
    clamd = await startClamd();
    redisClient = new Redis(redis.url);
    bus = await connectBus({
      servers: nats.url,
      name: 'av-test',
      log: createLogger({ service: 'av-test', level: 'silent' }),
    });
    bus.subscribe<MoatEvent>('events.av.>', (m) => void events.push(m.data));
    await ensureScanQueue(await bus.jetstreamManager());
    client = new ScanClient({ nc: bus.nc, redis: redisClient });
    await startWorker('worker-a');
  });

  after(async () => {
    client?.close();
    for (const name of [...workers.keys()]) await stopWorker(name);
    await bus?.drain().catch(() => undefined);
    redisClient?.disconnect();
    await clamd?.dispose();
    await redis?.stop();
    await nats?.stop();
  });

  test('av-scanner - EICAR plain, in zip, nested zip, gzip, tar and tar.gz, and the custom samples: infected, naming the signature', async () => {
    for (const sample of await infectedSamples()) {
      const verdict = await scan(sample.content);
      assert.equal(verdict.result, 'infected', `${sample.name}: ${JSON.stringify(verdict)}`);
      assert.equal(verdict.signature, sample.signature, sample.name);
      assert.equal(verdict.worker, 'worker-a');
      assert.match(verdict.signatureVersion ?? '', /^custom-/);
    }
  });

  test('av-scanner - a clean 10 MiB body travels through the object store, is clean, and its object is deleted', async () => {
    const content = randomBytes(10 * 2 ** 20);
    const verdict = await scan(content, 30_000);
    assert.equal(verdict.result, 'clean', JSON.stringify(verdict));
    assert.equal(verdict.cached, false);
    const jsm = await jetstreamManager(bus.nc);
    await waitFor('the object deleted', async () => {
      const info = await jsm.streams.info(`OBJ_${SCAN_BODIES_BUCKET}`);
      // a deleted object leaves only its (tiny) deletion marker: the 10 MiB of chunks are purged
      return info.state.bytes < 4096;
    });
  });

  test('av-scanner - the same content twice: the second verdict comes from the cache, without a scan', async () => {
    const content = randomBytes(4096);
    const first = await scan(content);
    assert.equal(first.cached, false);
    const second = await scan(content);
    assert.equal(second.result, 'clean');
    assert.equal(second.cached, true);
    assert.equal(second.worker, 'proxy', 'the proxy answered from the cache without queueing a job');
    assert.equal(second.signatureVersion, first.signatureVersion);
    // a proxy that cannot see the announced version still gets a cache hit, from the worker
    await redisClient.del('moat:av:signature-version');
    const fresh = new ScanClient({ nc: bus.nc, redis: redisClient });
    try {
      const third = await fresh.scan({ content, timeoutMs: 10_000, direction: 'download' });
      assert.equal(third.cached, true);
      assert.equal(third.worker, 'worker-a');
    } finally {
      fresh.close();
    }
  });

  test('av-scanner - every verdict is an event (events.av.clean|infected|error) with the trace id', async () => {
    events.length = 0;
    await scan(Buffer.concat([EICAR, randomBytes(16)]));
    await waitFor('an infected event', async () => events.some((e) => e.action === 'infected'));
    const event = events.find((e) => e.action === 'infected');
    assert.ok(event);
    moatEventSchema.parse(event);
    assert.equal(event.engine, 'av');
    assert.equal(event.tag, 'AV_VIRUS_DETECTED');
    assert.equal(event.signature, 'Moat.Test.EICAR-Body.UNOFFICIAL');
    assert.equal(event.url, 'http://test.example/file');
  });

  test('av-scanner - a worker killed mid-scan: the job goes to another worker and the verdict still arrives', async () => {
    // freeze clamd so worker-a's scan cannot finish, let it take the job, then kill it
    const jsm = await jetstreamManager(bus.nc);
    clamd.freeze();
    const pending = scan(Buffer.concat([EICAR, randomBytes(32)]), 30_000);
    await waitFor(
      'worker-a holding the job',
      async () => (await jsm.consumers.info(SCAN_STREAM, SCAN_CONSUMER)).num_ack_pending === 1,
    );
    await stopWorker('worker-a', 'SIGKILL');
    clamd.thaw();
    const started = Date.now();
    await startWorker('worker-b');
    const verdict = await pending;
    assert.equal(verdict.result, 'infected', JSON.stringify(verdict));
    assert.equal(verdict.worker, 'worker-b', 'redelivered to the other worker');
    assert.ok(Date.now() - started < 15_000);
  });

  const scanCheck = (...args: string[]) =>
    runCommand(process.execPath, [SCAN_CHECK, '--nats', nats.url, '--redis', redis.url, ...args], {
      timeoutMs: 60_000,
    });

  test('av-scanner - scan-check (what helm test runs): EICAR infected and fresh content scanned clean, exit 0', async () => {
    const run = await scanCheck('--json');
    assert.equal(run.code, 0, run.stdout + run.stderr);
    const report = JSON.parse(run.stdout) as {
      ok: boolean;
      results: {
        name: string;
        ok: boolean;
        verdict: { result: string; signature?: string; cached: boolean };
      }[];
    };
    assert.equal(report.ok, true);
    const by = Object.fromEntries(report.results.map((r) => [r.name, r]));
    assert.equal(by.eicar?.verdict.result, 'infected');
    assert.match(by.eicar?.verdict.signature ?? '', /EICAR/);
    for (const name of ['clean-4k', 'clean-1m']) {
      assert.equal(by[name]?.verdict.result, 'clean', name);
      assert.equal(by[name]?.verdict.cached, false, `${name} was scanned, not looked up`);
    }
    const text = await scanCheck();
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ok +eicar +infected/m);
    assert.match(text.stdout, /the antivirus pipeline works/);
  });

  test('av-scanner - clamd stopped: the worker is not ready and takes no jobs; the scan gets no verdict, and resumes once clamd is back', async () => {
    const [name, w] = [...workers.entries()][0] ?? [];
    assert.ok(name && w);
    await clamd.stop();
    await waitFor(
      'the worker unready',
      async () => (await fetch(`http://127.0.0.1:${w.port}/readyz`)).status === 503,
      {
        timeoutMs: 10_000,
      },
    );
    const body = (await (await fetch(`http://127.0.0.1:${w.port}/readyz`)).json()) as {
      checks: Record<string, string>;
    };
    assert.match(body.checks.clamd ?? '', /not answering/);
    const verdict = await scan(Buffer.concat([EICAR, randomBytes(8)]), 1500);
    assert.equal(verdict.result, 'error');
    assert.match(verdict.reason ?? '', /no verdict within 1500 ms/);
    // scan-check fails, and says which verdict is missing and where to look
    const check = await scanCheck('--timeout-ms', '1500');
    assert.equal(check.code, 1, check.stdout + check.stderr);
    assert.match(check.stdout, /^FAIL clean-4k .*no verdict within 1500 ms/m);
    assert.match(check.stdout, /moatctl status/);
    await clamd.start();
    await waitFor(
      'the worker ready again',
      async () => (await fetch(`http://127.0.0.1:${w.port}/readyz`)).ok,
      {
        timeoutMs: 15_000,
      },
    );
    const after = await scan(Buffer.concat([EICAR, randomBytes(8)]));
    assert.equal(after.result, 'infected', JSON.stringify(after));
  });

  test('av-scanner - a new signature is picked up without a restart, under a new version (old cache entries no longer answer)', async () => {
    const sample = Buffer.from(`a brand-new threat ${Date.now()}\n`);
    const before = await scan(sample);
    assert.equal(before.result, 'clean');
    const { createHash } = await import('node:crypto');
    writeFileSync(
      join(clamd.databaseDirectory, 'update.hsb'),
      `${createHash('sha256').update(sample).digest('hex')}:${sample.length}:Moat.Test.New-Threat\n`,
    );
    let verdict = before;
    await waitFor(
      'the new signature in use',
      async () => {
        verdict = await scan(sample);
        return verdict.result === 'infected';
      },
      { timeoutMs: 20_000 },
    );
    assert.equal(verdict.signature, 'Moat.Test.New-Threat.UNOFFICIAL');
    assert.notEqual(verdict.signatureVersion, before.signatureVersion);
  });

  test('av-scanner - a malformed job is dropped, the worker keeps serving; status shows clamd, signatures and the queue', async () => {
    const js = jetstream(bus.nc);
    const h = headers();
    h.set(SCAN_HEADER.id, 'bad');
    h.set(SCAN_HEADER.sha256, 'not-a-hash');
    await js.publish(SCAN_SUBJECT, Buffer.from('x'), { headers: h });
    const verdict = await scan(Buffer.concat([EICAR, randomBytes(8)]));
    assert.equal(verdict.result, 'infected');
    type Status = {
      ready: boolean;
      details: {
        clamd: { up: boolean };
        signatures: { version: string; ageHours: number; maxAgeHours: number };
        selfTest: { passed: boolean };
        queue?: { pending: number };
      };
    };
    const statuses = await bus.gather<Status>('moat.status.av-scanner', {}, 500);
    assert.equal(statuses.length, workers.size);
    const status = statuses[0];
    assert.ok(status?.ready);
    assert.equal(status.details.clamd.up, true);
    assert.match(status.details.signatures.version, /^custom-/);
    assert.ok(status.details.signatures.ageHours < 1);
    assert.equal(status.details.selfTest.passed, true);
    assert.equal(typeof status.details.queue?.pending, 'number');
  });

  test('av-scanner - a worker whose clamd fails the EICAR self-test is not ready and takes no jobs', async () => {
    const blind = await startClamd({
      signatures: { 'other.hdb': '0123456789abcdef0123456789abcdef:5:Other.Sig\n' },
    });
    try {
      const { port } = await startWorker(
        'worker-blind',
        {
          MOAT_AV_SCANNER_CLAMD_ADDRESS: blind.address,
          MOAT_AV_SCANNER_SIGNATURE_DIR: blind.databaseDirectory,
        },
        false,
      );
      await waitFor('the self-test failure reported', async () => {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        const body = (await r.json()) as { checks: Record<string, string> };
        return r.status === 503 && /EICAR was not detected/.test(body.checks['self-test'] ?? '');
      });
      for (let i = 0; i < 6; i++) {
        const verdict = await scan(Buffer.concat([EICAR, randomBytes(8)]));
        assert.equal(verdict.result, 'infected', 'only the healthy worker answers');
        assert.notEqual(verdict.worker, 'worker-blind');
      }
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.doesNotMatch(metrics, /^moat_av_jobs_total\{[^}]*\} [1-9]/m, 'the blind worker took no job');
    } finally {
      await stopWorker('worker-blind');
      await blind.dispose();
    }
  });

  test('av-scanner - signatures older than allowed: the worker is not ready, and says why', async () => {
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    for (const file of readdirSync(clamd.databaseDirectory))
      utimesSync(join(clamd.databaseDirectory, file), twoHoursAgo, twoHoursAgo);
    const { port } = await startWorker(
      'worker-stale',
      { MOAT_AV_SCANNER_MAX_SIGNATURE_AGE_HOURS: '1' },
      false,
    );
    await waitFor(
      'stale signatures reported',
      async () => {
        const r = await fetch(`http://127.0.0.1:${port}/readyz`);
        const body = (await r.json()) as { checks: Record<string, string> };
        return (
          r.status === 503 &&
          /2\.0 h old \(limit 1 h.*is freshclam running/.test(body.checks.signatures ?? '')
        );
      },
      { timeoutMs: 20_000 },
    );
    await stopWorker('worker-stale');
  });
});
