/**
 * QoS with real packets: the firewall classifies flows in the gateway namespace, the shaper builds HTB
 * trees there, and iperf3 measures what gets through. Needs root, nft, tc and iperf3; says so loudly
 * otherwise.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Firewall } from '@moat/firewall/firewall';
import { createTopology, NS, packetTestSkipReason, removeTopology } from '@moat/firewall/testing';
import { type ManagedProcess, runCommand } from '@moat/testkit';
import { QosPolicyError, Shaper } from './shaper.js';
import { iperf, iperfSkipReason, startIperfServers } from './testing/iperf.js';
import {
  EGRESS_POLICY,
  INGRESS_POLICY,
  MISSING_INTERFACE_POLICY,
  NO_QOS_POLICY,
  PORTS,
} from './testing/policies.js';

const inGateway = ['ip', 'netns', 'exec', NS.gw];
const reason = (await packetTestSkipReason()) ?? (await iperfSkipReason());
if (reason) console.error(`\n!!!!!!!! SKIPPING QOS PACKET TESTS: ${reason} !!!!!!!!\n`);

const mbit = (bps: number) => `${(bps / 1e6).toFixed(2)} Mbit/s`;

/** Asserts `measured` is within ±`tolerance` of `target`. */
function assertNear(measured: number, target: number, tolerance: number, what: string) {
  const low = target * (1 - tolerance);
  const high = target * (1 + tolerance);
  assert.ok(
    measured >= low && measured <= high,
    `${what}: measured ${mbit(measured)}, expected ${mbit(target)} ±${tolerance * 100}%`,
  );
}

const tcText = async (...args: string[]) =>
  (await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', ...args])).stdout;

describe('qos with real packets', { skip: reason }, () => {
  const firewall = new Firewall({ nft: { command: [...inGateway, 'nft'] } });
  const shaper = new Shaper({ prefix: inGateway });
  const servers: ManagedProcess[] = [];
  const classBytes = async (name: string) =>
    (await shaper.classes()).find((view) => view.class === name && view.direction === 'egress')?.stats
      ?.bytes ?? 0;

  before(async () => {
    await createTopology();
    await startIperfServers(Object.values(PORTS), servers);
    await firewall.apply(EGRESS_POLICY);
  });

  after(async () => {
    for (const server of servers) await server.stop();
    await removeTopology();
  });

  test('qos - a class with a 10 Mbit/s ceiling measures 10 Mbit/s ±10%', async () => {
    const outcome = await shaper.apply(EGRESS_POLICY);
    assert.deepEqual(outcome.applied, ['wan0 egress']);
    const before = await classBytes('capped');
    const measured = await iperf(PORTS.capped);
    console.log(`capped class (ceil 10 Mbit/s): ${mbit(measured)}`);
    assertNear(measured, 10e6, 0.1, 'the capped class');
    assert.ok((await classBytes('capped')) - before > 3_000_000, 'the traffic went through the capped class');
  });

  test('qos - two classes under contention share in proportion to their rates (16:8)', async () => {
    // 8 s each: the share settles over seconds, and a busy machine (CI runs other suites beside
    // this one) moved 5 s measurements to the edge of the tolerance
    const [gold, silver] = await Promise.all([
      iperf(PORTS.gold, { seconds: 8 }),
      iperf(PORTS.silver, { seconds: 8 }),
    ]);
    console.log(
      `gold (rate 16): ${mbit(gold)}, silver (rate 8): ${mbit(silver)}, ratio ${(gold / silver).toFixed(2)}`,
    );
    assertNear(gold / silver, 2, 0.2, 'the gold:silver ratio');
    // the link's 30 Mbit/s less what capped/bulk could take but did not: all of it, shared
    assertNear(gold + silver, 30e6, 0.1, 'the two classes together');
  });

  test('qos - traffic no rule classifies goes to the default class', async () => {
    const before = await classBytes('bulk');
    const measured = await iperf(PORTS.unclassified);
    console.log(`unclassified traffic (default class bulk, ceil 4 Mbit/s): ${mbit(measured)}`);
    assertNear(measured, 4e6, 0.1, 'the default class');
    assert.ok((await classBytes('bulk')) - before > 1_000_000, 'the default class counted it');
  });

  test('qos - an unchanged policy is not re-applied: the classes keep counting', async () => {
    const before = await classBytes('capped');
    const outcome = await shaper.apply(EGRESS_POLICY);
    assert.deepEqual(outcome.applied, []);
    assert.deepEqual(outcome.unchanged, ['wan0 egress']);
    assert.ok((await classBytes('capped')) >= before, 'the statistics were not reset');
  });

  test('qos - a tree the kernel lost (a qdisc deleted by hand) is written again, though the policy is unchanged', async () => {
    await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', 'qdisc', 'del', 'dev', 'wan0', 'root']);
    const outcome = await shaper.apply(EGRESS_POLICY);
    assert.deepEqual(outcome.applied, ['wan0 egress']);
    assert.match(await tcText('qdisc', 'show', 'dev', 'wan0'), /qdisc htb 1: root/);
  });

  test('qos - a policy naming an interface the host lacks is refused and the qdiscs stay as they were', async () => {
    const qdiscs = await tcText('qdisc', 'show');
    const classes = await tcText('class', 'show', 'dev', 'wan0');
    await assert.rejects(shaper.apply(MISSING_INTERFACE_POLICY), (err: Error) => {
      assert.ok(err instanceof QosPolicyError);
      assert.match(err.message, /"wan9", which this host does not have/);
      return true;
    });
    assert.equal(await tcText('qdisc', 'show'), qdiscs);
    assert.equal(await tcText('class', 'show', 'dev', 'wan0'), classes);
    assert.deepEqual(
      (await shaper.apply(EGRESS_POLICY)).applied,
      [],
      'the running trees are still the policy',
    );
  });

  test('qos - ingress is shaped through an IFB: downloads measure the ingress rate ±10%', async () => {
    await firewall.apply(INGRESS_POLICY);
    const outcome = await shaper.apply(INGRESS_POLICY);
    assert.deepEqual(outcome.applied, ['wan0 egress', 'wan0 ingress']);
    assert.match(await tcText('filter', 'show', 'dev', 'wan0', 'ingress'), /Redirect to device moq-wan0/);
    const measured = await iperf(PORTS.unclassified, { reverse: true });
    console.log(`download through moq-wan0 (ingress 12 Mbit/s): ${mbit(measured)}`);
    assertNear(measured, 12e6, 0.1, 'the download');
  });

  test('qos - a policy without qos removes the trees, the ingress redirect and the IFB', async () => {
    const outcome = await shaper.apply(NO_QOS_POLICY);
    assert.deepEqual(outcome.removed.sort(), ['wan0 egress', 'wan0 ingress']);
    const qdiscs = await tcText('qdisc', 'show');
    assert.doesNotMatch(qdiscs, /htb|ingress/);
    const links = (await runCommand('ip', ['-n', NS.gw, 'link', 'show'])).stdout;
    assert.doesNotMatch(links, /moq-wan0/);
  });

  test('qos - ingress shaping is refused on an interface whose ingress an eBPF clsact qdisc owns', async () => {
    await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', 'qdisc', 'add', 'dev', 'wan0', 'clsact']);
    try {
      const before = await tcText('qdisc', 'show');
      await assert.rejects(shaper.apply(INGRESS_POLICY), (err: Error) => {
        assert.ok(err instanceof QosPolicyError);
        assert.match(err.message, /wan0 has a clsact qdisc/);
        return true;
      });
      assert.equal(await tcText('qdisc', 'show'), before, 'nothing changed');
    } finally {
      await runCommand('ip', ['netns', 'exec', NS.gw, 'tc', 'qdisc', 'del', 'dev', 'wan0', 'clsact']);
    }
  });
});
