import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Bus, connectBus } from '@moat/bus';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import { announcePolicyChange, type Policy, type PolicyRecord } from '@moat/policy';
import { loadExamplePolicy, policyVariant } from '@moat/policy/testing';
import { freePort, type NatsServer, type RedisServer, startNats, startRedis, waitFor } from '@moat/testkit';
import {
  type BaseConfig,
  baseConfigSchema,
  loadServiceConfig,
  type ServiceKit,
  type ServiceStatus,
  startServiceKit,
} from './index.js';

const { policy: demo } = loadExamplePolicy('demo');
const variant = (description: string): Policy => policyVariant(demo, description);

const log = createLogger({ service: 'kit-test', level: 'silent' });

interface HttpReply {
  status: number;
  body: string;
}

/** GET on loopback without keep-alive (no socket outlives the call), with a deadline. */
function httpGet(port: number, path: string, timeoutMs = 3000): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'GET',
        agent: false,
        headers: { connection: 'close' },
        timeout: timeoutMs,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** Resolves with `p`, or rejects when it takes longer than `ms` (a hung shutdown must fail the test, not hang it). */
async function within<T>(ms: number, what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const kitConfig = (natsUrl: string, redisUrl: string, instanceId: string): BaseConfig => ({
  natsUrl,
  redisUrl,
  httpHost: '127.0.0.1',
  httpPort: 0,
  instanceId,
  logLevel: 'silent',
});

let nats: NatsServer;
let redis: RedisServer;
let bus: Bus;
let kit: ServiceKit;
const applied: PolicyRecord[] = [];
/** Kits a test started and did not shut down itself (a failing assertion must not leak them). */
const extraKits = new Set<ServiceKit>();
const extraRedis = new Set<RedisServer>();

before(async () => {
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  bus = await connectBus({ servers: nats.url, name: 'kit-test', log });
  kit = await startServiceKit({
    service: 'kittest',
    version: '9.9.9',
    config: kitConfig(nats.url, redis.url, 'kittest-1'),
    applyPolicy: (record) => void applied.push(record),
    details: () => ({ queueDepth: 3 }),
    handleSignals: false,
  });
});

after(async () => {
  for (const k of extraKits) await within(10_000, 'extra kit shutdown', k.shutdown()).catch(() => undefined);
  await within(10_000, 'kit shutdown', kit.shutdown()).catch(() => undefined);
  await bus.drain();
  for (const r of extraRedis) await r.stop();
  await Promise.all([nats.stop(), redis.stop()]);
});

test('kit - /healthz answers 200', async () => {
  const r = await httpGet(kit.httpPort, '/healthz');
  assert.equal(r.status, 200);
  assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
});

test('kit - /readyz answers 200 with the redis, nats and policy checks ok', async () => {
  const r = await httpGet(kit.httpPort, '/readyz');
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { ready: boolean; checks: Record<string, string> };
  assert.equal(body.ready, true);
  assert.deepEqual(body.checks, { redis: 'ok', nats: 'ok', policy: 'ok' });
});

test('kit - /metrics is Prometheus text with the applied policy version gauge', async () => {
  const r = await httpGet(kit.httpPort, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.body, /^# HELP moat_policy_applied_version /m);
  assert.match(r.body, /^moat_policy_applied_version\{service="kittest"\} 0$/m);
  assert.match(r.body, /^process_cpu_user_seconds_total\{service="kittest"\} /m);
});

test('kit - an unknown path answers 404 and a POST answers 405', async () => {
  assert.equal((await httpGet(kit.httpPort, '/nope')).status, 404);
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: kit.httpPort,
        path: '/healthz',
        method: 'POST',
        agent: false,
        timeout: 3000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
  assert.equal(status, 405);
});

test('kit - a status request on moat.status.<service> answers with service, instance, ready and policy', async () => {
  const s = await bus.request<ServiceStatus>('moat.status.kittest', {}, 2000);
  assert.equal(s.service, 'kittest');
  assert.equal(s.instance, 'kittest-1');
  assert.equal(s.version, '9.9.9');
  assert.equal(s.healthy, true);
  assert.equal(s.ready, true);
  assert.deepEqual(s.checks, { redis: 'ok', nats: 'ok', policy: 'ok' });
  assert.deepEqual(s.policy, {});
  assert.deepEqual(s.details, { queueDepth: 3 });
  assert.ok(!Number.isNaN(Date.parse(s.startedAt)));
});

test('kit - the broadcast moat.status request is answered by the kit', async () => {
  const replies = await bus.gather<ServiceStatus>('moat.status', {}, 300);
  const mine = replies.filter((r) => r.service === 'kittest');
  assert.equal(mine.length, 1, JSON.stringify(replies));
  assert.equal(mine[0]?.instance, 'kittest-1');
  assert.equal(mine[0]?.ready, true);
  assert.ok('policy' in (mine[0] ?? {}));
});

test('kit - a stored and announced policy reaches applyPolicy within 1 s; metric and status show the version', async () => {
  const before = applied.length;
  const result = await kit.store.apply(variant('kit test one'), { author: 'kit-test' });
  assert.equal(result.version, 1);
  const started = Date.now();
  announcePolicyChange(bus, { version: result.version, sha256: result.info.sha256 });
  await waitFor('the kit to apply version 1', async () => applied.length > before, { timeoutMs: 1000 });
  const ms = Date.now() - started;
  assert.ok(ms < 1000, `took ${ms} ms`);
  const record = applied.at(-1) as PolicyRecord;
  assert.equal(record.version, 1);
  assert.equal(record.policy.metadata.description, 'kit test one');

  const metrics = await httpGet(kit.httpPort, '/metrics');
  assert.match(metrics.body, /^moat_policy_applied_version\{service="kittest"\} 1$/m);
  assert.match(metrics.body, /^moat_policy_apply_latency_seconds\{service="kittest"\} \d/m);

  const s = await bus.request<ServiceStatus>('moat.status.kittest', {}, 2000);
  assert.equal(s.policy.applied?.version, 1);
  assert.equal(s.policy.applied?.sha256, result.info.sha256);
  assert.equal(s.policy.failed, undefined);
  assert.equal(kit.policy.state().applied?.version, 1);
});

test('kit - a policy that fails to apply keeps the previous one and is reported; readiness stays up', async () => {
  let calls = 0;
  const failing = await startServiceKit({
    service: 'kitfail',
    version: '1',
    config: kitConfig(nats.url, redis.url, 'kitfail-1'),
    applyPolicy: (record) => {
      calls++;
      if (record.policy.metadata.description === 'boom') throw new Error('engine refused it');
    },
    handleSignals: false,
  });
  extraKits.add(failing);
  assert.equal(failing.policy.state().applied?.version, 1, 'catches up on the current version at start');
  const result = await failing.store.apply(variant('boom'), { author: 'kit-test' });
  announcePolicyChange(bus, { version: result.version, sha256: result.info.sha256 });
  await waitFor('the failure to be recorded', async () => failing.policy.state().failed !== undefined, {
    timeoutMs: 2000,
  });
  const state = failing.policy.state();
  assert.equal(state.applied?.version, 1);
  assert.equal(state.failed?.version, 2);
  assert.match(state.failed?.error ?? '', /engine refused it/);
  const ready = await failing.health.readiness();
  assert.equal(ready.ready, true, JSON.stringify(ready));
  assert.equal(calls, 2);
  await within(10_000, 'kitfail shutdown', failing.shutdown());
  extraKits.delete(failing);
  // the main kit has moved on to version 2 meanwhile
  await waitFor('kittest to apply version 2', async () => kit.policy.state().applied?.version === 2, {
    timeoutMs: 2000,
  });
});

test('kit - when Redis stops, /readyz turns 503 naming redis', async () => {
  const own = await startRedis();
  extraRedis.add(own);
  const k = await startServiceKit({
    service: 'kitredis',
    version: '1',
    config: kitConfig(nats.url, own.url, 'kitredis-1'),
    applyPolicy: () => undefined,
    handleSignals: false,
  });
  extraKits.add(k);
  assert.equal((await httpGet(k.httpPort, '/readyz')).status, 200);
  await own.stop();
  let last: HttpReply = { status: 0, body: '' };
  await waitFor(
    '/readyz to turn 503',
    async () => {
      last = await httpGet(k.httpPort, '/readyz');
      return last.status === 503;
    },
    { timeoutMs: 8000 },
  );
  const body = JSON.parse(last.body) as { ready: boolean; checks: Record<string, string> };
  assert.equal(body.ready, false);
  assert.notEqual(body.checks.redis, 'ok', last.body);
  assert.ok(body.checks.redis, last.body);
  assert.equal(body.checks.nats, 'ok');
  // still alive: liveness does not depend on Redis
  assert.equal((await httpGet(k.httpPort, '/healthz')).status, 200);
  const started = Date.now();
  await within(10_000, 'shutdown with Redis gone', k.shutdown());
  extraKits.delete(k);
  console.log(`# kit shutdown with Redis down took ${Date.now() - started} ms`);
});

/**
 * Runs startServiceKit against the given URLs in a child process (a failed start must not leave
 * anything behind in this one) and reports the error and whether the child then exited by itself.
 */
async function failedStartInChild(
  natsUrl: string,
  redisUrl: string,
): Promise<{ error: string; exitedByItself: boolean }> {
  const kitUrl = new URL('./index.js', import.meta.url).href;
  const config = JSON.stringify(kitConfig(natsUrl, redisUrl, 'child-1'));
  const script = `
    const { startServiceKit } = await import(${JSON.stringify(kitUrl)});
    try {
      await startServiceKit({ service: 'kitchild', version: '1', config: ${config}, applyPolicy: () => {}, handleSignals: false });
      console.log(JSON.stringify({ error: '' }));
    } catch (err) {
      console.log(JSON.stringify({ error: err.message }));
    }`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.resume();
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitFor('the child to report', async () => out.includes('\n'), { timeoutMs: 15_000 });
    const { error } = JSON.parse(out.split('\n')[0] ?? '{}') as { error: string };
    const exitedByItself = await Promise.race([exited.then(() => true), sleep(3000).then(() => false)]);
    return { error, exitedByItself };
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

let noRedis: Promise<{ error: string; exitedByItself: boolean }> | undefined;
const startWithoutRedis = async () => {
  noRedis ??= failedStartInChild(nats.url, `redis://127.0.0.1:${await freePort()}`);
  return noRedis;
};

test('kit - start-up fails fast naming Redis when it cannot be reached', async () => {
  const { error } = await startWithoutRedis();
  assert.match(error, /cannot connect to Redis at redis:\/\/127\.0\.0\.1:\d+ \(MOAT_REDIS_URL\)/);
});

test('kit - a start that failed on Redis leaves nothing running (the process can exit)', async () => {
  const { exitedByItself } = await startWithoutRedis();
  assert.equal(exitedByItself, true, 'the process stayed alive after the failed start');
});

test('kit - start-up fails fast naming NATS when it cannot be reached, and leaves nothing running', async () => {
  const { error, exitedByItself } = await failedStartInChild(
    `nats://127.0.0.1:${await freePort()}`,
    redis.url,
  );
  assert.match(error, /cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+ \(MOAT_NATS_URL\)/);
  assert.equal(exitedByItself, true, 'the process stayed alive after the failed start');
});

test('kit - after shutdown readiness is off and the HTTP server is closed', async () => {
  const k = await startServiceKit({
    service: 'kitstop',
    version: '1',
    config: kitConfig(nats.url, redis.url, 'kitstop-1'),
    applyPolicy: () => undefined,
    handleSignals: false,
  });
  extraKits.add(k);
  const port = k.httpPort;
  assert.equal((await httpGet(port, '/readyz')).status, 200);
  const order: string[] = [];
  k.onShutdown({
    name: 'own server',
    run: () => void order.push(k.bus.nc.isClosed() ? 'after NATS' : 'before NATS'),
  });
  await within(10_000, 'kit shutdown', k.shutdown());
  extraKits.delete(k);
  assert.deepEqual(order, ['before NATS'], 'own shutdown steps run while NATS is still open');
  const r = await k.health.readiness();
  assert.equal(r.ready, false);
  assert.equal(r.checks.shutdown, 'shutting down');
  assert.equal(k.health.server.listening, false);
  await assert.rejects(httpGet(port, '/healthz'), /ECONNREFUSED/);
  assert.equal(k.bus.nc.isClosed(), true);
  assert.equal(k.redis.status, 'end');
  // it no longer answers status requests
  const replies = await bus.gather<ServiceStatus>('moat.status', {}, 200);
  assert.equal(
    replies.some((s) => s.service === 'kitstop'),
    false,
  );
});

test('config - loadServiceConfig lists every bad variable in one error', () => {
  let caught: unknown;
  try {
    loadServiceConfig('svc', baseConfigSchema, {
      MOAT_NATS_URL: 'http://x',
      MOAT_SVC_HTTP_PORT: 'abc',
      MOAT_REDIS_URL: 'not a url',
      MOAT_LOG_LEVEL: 'loud',
    });
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof ConfigError, String(caught));
  const keys = caught.issues.map((i) => i.key).sort();
  assert.deepEqual(keys, ['MOAT_LOG_LEVEL', 'MOAT_NATS_URL', 'MOAT_REDIS_URL', 'MOAT_SVC_HTTP_PORT']);
  for (const key of keys) assert.match(caught.message, new RegExp(`^  ${key}: `, 'm'));
  assert.match(caught.message, /invalid configuration for svc/);
});

test('config - a missing required port is named; good values are parsed and defaults filled', () => {
  assert.throws(() => loadServiceConfig('my-svc', baseConfigSchema, {}), /MOAT_MY_SVC_HTTP_PORT/);
  const c = loadServiceConfig('my-svc', baseConfigSchema, {
    MOAT_MY_SVC_HTTP_PORT: '9000',
    MOAT_NATS_URL: 'nats://10.0.0.1:4222',
    MOAT_INSTANCE_ID: 'i-1',
  });
  assert.equal(c.httpPort, 9000);
  assert.equal(c.natsUrl, 'nats://10.0.0.1:4222');
  assert.equal(c.redisUrl, 'redis://127.0.0.1:6379');
  assert.equal(c.instanceId, 'i-1');
  assert.equal(c.logLevel, 'info');
});
