import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { type Bus, connectBus } from '@moat/bus';
import { createLogger } from '@moat/log';
import { type NatsServer, type RedisServer, startNats, startRedis } from '@moat/testkit';
import { Redis } from 'ioredis';
import {
  announcePolicyChange,
  followPolicy,
  type Policy,
  PolicyNotFoundError,
  type PolicyRecord,
  PolicyStore,
} from './index.js';
import { loadExamplePolicy, policyVariant } from './testing.js';

const { text: demoText, policy: demo } = loadExamplePolicy('demo');
const variant = (description: string): Policy => policyVariant(demo, description);

const log = createLogger({ service: 'policy-test', level: 'silent' });
let redisServer: RedisServer;
let natsServer: NatsServer;
let redis: Redis;
let bus: Bus;
let store: PolicyStore;

before(async () => {
  [redisServer, natsServer] = await Promise.all([startRedis(), startNats()]);
  redis = new Redis(redisServer.url);
  bus = await connectBus({ servers: natsServer.url, name: 'policy-test', log });
});
beforeEach(async () => {
  await redis.flushall();
  store = new PolicyStore(redis);
});
after(async () => {
  await bus.drain();
  redis.disconnect();
  await Promise.all([redisServer.stop(), natsServer.stop()]);
});

test('store - versions count up, the current one is the latest, history is newest first', async () => {
  assert.equal(await store.currentVersion(), 0);
  await assert.rejects(store.get(), PolicyNotFoundError);
  const a = await store.apply(variant('one'), { author: 'alice', comment: 'first', source: demoText });
  const b = await store.apply(variant('two'), { author: 'bob' });
  assert.deepEqual([a.version, a.created, b.version, b.created], [1, true, 2, true]);
  assert.equal(await store.currentVersion(), 2);
  const current = await store.get();
  assert.equal(current.policy.metadata.description, 'two');
  assert.equal((await store.get(1)).source, demoText);
  const history = await store.history();
  assert.deepEqual(
    history.map((h) => [h.version, h.author, h.comment]),
    [
      [2, 'bob', ''],
      [1, 'alice', 'first'],
    ],
  );
  await assert.rejects(store.get(7), /policy version 7 does not exist/);
});

test('store - an invalid policy is refused and nothing is stored', async () => {
  await store.apply(variant('good'), { author: 'a' });
  const rules = demo.securityRules.map((r, i) => (i === 0 ? { ...r, utmPolicy: 'missing' } : r));
  await assert.rejects(
    store.apply({ ...demo, securityRules: rules }, { author: 'a' }),
    /securityRules\[0\]\.utmPolicy/,
  );
  assert.equal(await store.currentVersion(), 1);
  assert.equal((await store.history()).length, 1);
});

test('store - applying the current policy again creates no version', async () => {
  await store.apply(variant('same'), { author: 'a' });
  const again = await store.apply(variant('same'), { author: 'a' });
  assert.deepEqual([again.version, again.created], [1, false]);
  assert.equal((await store.history()).length, 1);
});

test('store - diff lists the changed fields by path', async () => {
  await store.apply(variant('one'), { author: 'a' });
  const rules = demo.securityRules.map((r, i) => (i === 0 ? { ...r, description: 'changed' } : r));
  await store.apply({ ...variant('two'), securityRules: rules }, { author: 'a' });
  const diff = await store.diff(1, 2);
  const paths = diff.map((d) => d.path);
  assert.ok(paths.includes('metadata.description'));
  assert.ok(paths.includes('securityRules[0].description'));
  const desc = diff.find((d) => d.path === 'metadata.description');
  assert.deepEqual(desc, { path: 'metadata.description', kind: 'changed', before: 'one', after: 'two' });
  assert.deepEqual(await store.diff(1, 1), []);
});

test('store - rollback re-applies an old version as a new one', async () => {
  await store.apply(variant('one'), { author: 'a' });
  await store.apply(variant('two'), { author: 'a' });
  const r = await store.rollback(1, { author: 'ops' });
  assert.equal(r.version, 3);
  assert.equal(r.info.rolledBackFrom, 1);
  assert.equal(r.info.comment, 'rollback to version 1');
  assert.equal((await store.get()).policy.metadata.description, 'one');
  assert.equal((await store.get(3)).sha256, (await store.get(1)).sha256);
  await assert.rejects(store.rollback(9, { author: 'ops' }), PolicyNotFoundError);
});

test('store - concurrent applies from many clients never lose a version', async () => {
  const clients = Array.from({ length: 8 }, () => new Redis(redisServer.url));
  const n = 80;
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      new PolicyStore(clients[i % clients.length] as Redis).apply(variant(`v${i}`), { author: `w${i}` }),
    ),
  );
  for (const c of clients) c.disconnect();
  assert.deepEqual(
    results.map((r) => r.version).sort((x, y) => x - y),
    Array.from({ length: n }, (_, i) => i + 1),
  );
  assert.equal(await store.currentVersion(), n);
  // Every version holds the document its writer sent.
  for (const r of results) {
    const rec = await store.get(r.version);
    assert.equal(`w${rec.policy.metadata.description?.slice(1)}`, rec.author);
  }
});

test('follower - policy.changed over real NATS reaches a service, one apply per version', async () => {
  const applied: number[] = [];
  const follower = await followPolicy({
    bus,
    store,
    log,
    apply: (r: PolicyRecord) => void applied.push(r.version),
  });
  const { version, info } = await store.apply(variant('live'), { author: 'a' });
  announcePolicyChange(bus, { version, sha256: info.sha256 });
  const deadline = Date.now() + 2000;
  while (follower.state().applied?.version !== version && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const state = follower.state();
  follower.stop();
  assert.equal(state.applied?.version, version);
  assert.ok((state.applied?.latencyMs ?? Infinity) < 1000, `applied in ${state.applied?.latencyMs} ms`);
  assert.deepEqual(applied, [version]);
});

test('follower - a service that was down during a change catches up when it starts', async () => {
  await store.apply(variant('while-down-1'), { author: 'a' });
  const { version } = await store.apply(variant('while-down-2'), { author: 'a' });
  // Nobody listened to the announcements; a follower that starts now must apply the current version.
  const follower = await followPolicy({ bus, store, log, apply: () => undefined });
  assert.equal(follower.state().applied?.version, version);
  follower.stop();
});

test('follower - a policy that fails to apply leaves the previous one in force', async () => {
  const { version: good } = await store.apply(variant('good'), { author: 'a' });
  const follower = await followPolicy({
    bus,
    store,
    log,
    apply: (r) => {
      if (r.policy.metadata.description === 'explodes') throw new Error('engine rejected it');
    },
  });
  const { version: bad } = await store.apply(variant('explodes'), { author: 'a' });
  await follower.sync();
  const state = follower.state();
  follower.stop();
  assert.equal(state.applied?.version, good);
  assert.deepEqual([state.failed?.version, state.failed?.error], [bad, 'engine rejected it']);
});
