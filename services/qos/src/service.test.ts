/**
 * The qos service as it runs: real NATS and Redis, the policy stored and announced as control does,
 * the trees built in a gateway namespace, and what `moatctl show qos` and /metrics read.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus } from '@moat/bus';
import { createTopology, NS, packetTestSkipReason, removeTopology } from '@moat/firewall/testing';
import { createLogger } from '@moat/log';
import { announcePolicyChange, type Policy, PolicyStore } from '@moat/policy';
import type { QueryReply } from '@moat/service-kit';
import {
  freePort,
  type ManagedProcess,
  type NatsServer,
  type RedisServer,
  runCommand,
  startNats,
  startProcess,
  startRedis,
  waitFor,
} from '@moat/testkit';
import { Redis } from 'ioredis';
import type { ClassView } from './shaper.js';
import { iperfSkipReason } from './testing/iperf.js';
import { EGRESS_POLICY, INGRESS_POLICY, MISSING_INTERFACE_POLICY } from './testing/policies.js';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));
const reason = (await packetTestSkipReason()) ?? (await iperfSkipReason());
if (reason) console.error(`\n!!!!!!!! SKIPPING QOS SERVICE TESTS: ${reason} !!!!!!!!\n`);

const classesOnWan0 = async () =>
  (await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', 'class', 'show', 'dev', 'wan0'])).stdout;

describe('qos service', { skip: reason }, () => {
  let nats: NatsServer;
  let redis: RedisServer;
  let redisClient: Redis;
  let bus: Bus;
  let store: PolicyStore;
  let service: ManagedProcess;
  let httpPort: number;

  const metrics = async () => (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();

  async function publish(policy: Policy) {
    const result = await store.apply(policy, { author: 'test' });
    announcePolicyChange(bus, { version: result.version, sha256: result.info.sha256 });
    return { version: result.version, announcedAt: performance.now() };
  }

  async function statusNaming(version: number) {
    type Status = { policy: { applied?: { version: number }; failed?: { version: number; error: string } } };
    let last: Status | undefined;
    await waitFor(
      `status naming v${version}`,
      async () => {
        last = await bus.request<Status>('moat.status.qos', {}, 2000);
        return last.policy.failed?.version === version || last.policy.applied?.version === version;
      },
      { proc: service, timeoutMs: 5000 },
    );
    return last as Status;
  }

  before(async () => {
    await createTopology();
    nats = await startNats();
    redis = await startRedis();
    redisClient = new Redis(redis.url, { lazyConnect: true });
    await redisClient.connect();
    store = new PolicyStore(redisClient);
    bus = await connectBus({
      servers: nats.url,
      name: 'qos-test',
      log: createLogger({ service: 'qos-test', level: 'silent' }),
    });
    httpPort = await freePort();
    service = startProcess('qos', process.execPath, [MAIN], {
      env: {
        ...process.env,
        MOAT_NATS_URL: nats.url,
        MOAT_REDIS_URL: redis.url,
        MOAT_LOG_LEVEL: 'warn',
        MOAT_QOS_HTTP_PORT: String(httpPort),
        MOAT_QOS_NETNS: NS.gw,
        MOAT_QOS_RECHECK_SECONDS: '1',
      },
    });
    await waitFor('qos /readyz', async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok, {
      proc: service,
      timeoutMs: 20_000,
    });
  });

  after(async () => {
    await service?.stop();
    await bus?.drain().catch(() => undefined);
    redisClient?.disconnect();
    await redis?.stop();
    await nats?.stop();
    await removeTopology();
  });

  test('service - a new qos section is in the kernel within 1 s of policy.changed, and reported', async () => {
    const { version, announcedAt } = await publish(EGRESS_POLICY);
    await waitFor('the HTB tree on wan0', async () => /class htb 1:4a1 /.test(await classesOnWan0()), {
      proc: service,
      timeoutMs: 5000,
    });
    const appliedAfterMs = performance.now() - announcedAt;
    assert.ok(appliedAfterMs < 1000, `applied ${Math.round(appliedAfterMs)} ms after policy.changed`);
    assert.equal((await statusNaming(version)).policy.applied?.version, version);

    const reply = await bus.request<QueryReply>('moat.query.qos.classes', {}, 5000);
    assert.ok(reply.ok, JSON.stringify(reply));
    const classes = reply.result as ClassView[];
    assert.deepEqual(
      classes.map((c) => [c.interface, c.direction, c.class, c.ceil, c.isDefault]),
      [
        ['wan0', 'egress', 'bulk', 4e6, true],
        ['wan0', 'egress', 'capped', 10e6, false],
        ['wan0', 'egress', 'gold', 30e6, false],
        ['wan0', 'egress', 'silver', 30e6, false],
      ],
    );
    assert.ok(
      classes.every((c) => c.stats !== undefined),
      'each class has the kernel statistics',
    );
    assert.match(
      await metrics(),
      /^moat_qos_class_ceil_bits_per_second\{[^}]*interface="wan0",direction="egress",class="capped"[^}]*\} 10000000$/m,
    );
  });

  test('service - a tree the kernel loses is written again by the next recheck (1 s here)', async () => {
    const deleted = await runCommand('ip', [
      'netns',
      'exec',
      NS.gw,
      'tc',
      'qdisc',
      'del',
      'dev',
      'wan0',
      'root',
    ]);
    assert.equal(deleted.code, 0, deleted.stderr);
    await waitFor('the tree back on wan0', async () => /class htb 1:4a1 /.test(await classesOnWan0()), {
      proc: service,
      timeoutMs: 5000,
    });
    // the kernel shows the tree a moment before the service has counted its restore
    await waitFor(
      'the restore counted',
      async () => /^moat_qos_restored_trees_total\{[^}]*\} [1-9]/m.test(await metrics()),
      {
        proc: service,
        timeoutMs: 2000,
      },
    );
  });

  test('service - a policy this host cannot shape is reported and the running trees stay', async () => {
    const before = await classesOnWan0();
    const { version } = await publish(MISSING_INTERFACE_POLICY);
    const status = await statusNaming(version);
    assert.match(status.policy.failed?.error ?? '', /"wan9", which this host does not have/);
    assert.notEqual(status.policy.applied?.version, version);
    assert.equal(await classesOnWan0(), before);
  });

  test('service - a changed qos section is applied: ingress shaping added through an IFB', async () => {
    const { version } = await publish(INGRESS_POLICY);
    assert.equal((await statusNaming(version)).policy.applied?.version, version);
    const qdiscs = (
      await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', 'qdisc', 'show', 'dev', 'moq-wan0'])
    ).stdout;
    assert.match(qdiscs, /qdisc htb 1: root/);
    const reply = await bus.request<QueryReply>('moat.query.qos.classes', {}, 5000);
    const ingress = ((reply.ok ? reply.result : []) as ClassView[]).filter((c) => c.direction === 'ingress');
    assert.deepEqual(
      ingress.map((c) => [c.class, c.ceil]),
      [
        ['bulk', 12e6],
        ['capped', 10e6],
      ],
    );
  });
});
