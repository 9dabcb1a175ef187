/**
 * The firewall with real packets beyond TCP: UDP and ICMP per rule, anti-spoofing and connection
 * rate limits, in the firewall's own test namespaces. Needs root, nft, curl and ping; says so
 * loudly otherwise.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type ManagedProcess, runCommand } from '@moat/testkit';
import { Firewall } from './firewall.js';
import { curlFrom, packetTestSkipReason, pingFrom, startEchoServers, udpFrom } from './testing/packets.js';
import { testPolicy, writeBlocklist } from './testing/policies.js';
import { ADDR, createTopology, NS, removeTopology } from './testing/topology.js';

const reason = await packetTestSkipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING FIREWALL PROTOCOL TESTS: ${reason} !!!!!!!!\n`);

/** A source on the LAN side that belongs to the WAN side's network: only a spoofer sends from it. */
const SPOOFED = '10.71.2.77';

const RULES = `
  - { name: dns-like, fromZones: lan, toZones: wan, source: any, destination: wan-server, service: udp-5300, action: permit, counter: true }
  - { name: ping-server, fromZones: lan, toZones: wan, source: any, destination: wan-server, service: ping, action: permit, counter: true }
  - { name: any-source-9090, fromZones: lan, toZones: wan, source: any, destination: any, service: tcp-9090, action: permit }
  - { name: limited, fromZones: lan, toZones: wan, source: any, destination: any, service: udp-5301, action: permit, rateLimit: { rate: 2/second, burst: 3 }, counter: true }`;

describe('firewall with real packets: UDP, ICMP, anti-spoofing, rate limits', { skip: reason }, () => {
  let dir: string;
  const servers: ManagedProcess[] = [];
  const firewall = new Firewall({ nft: { command: ['ip', 'netns', 'exec', NS.gw, 'nft'] } });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-fw-proto-'));
    await createTopology();
    servers.push(...(await startEchoServers()));
    const policy = testPolicy(writeBlocklist(dir, 10, [ADDR.listed]), 'protocols', RULES);
    await firewall.apply(policy);
  });

  after(async () => {
    for (const server of servers) await server.stop();
    await removeTopology();
    rmSync(dir, { recursive: true, force: true });
  });

  test('firewall - UDP: a permitted flow is answered through source NAT, another is dropped', async () => {
    const permitted = await udpFrom(NS.lan, ADDR.server, 5300);
    assert.deepEqual(permitted, { answered: 1, first: `peer=${ADDR.gwWan} local=${ADDR.server}:5300` });
    const before = (await firewall.counters()).get('default')?.packets ?? 0;
    const other = await udpFrom(NS.lan, ADDR.unlisted, 5300);
    assert.equal(other.answered, 0, 'the UDP rule permits one destination only');
    assert.ok(
      ((await firewall.counters()).get('default')?.packets ?? 0) > before,
      'the default deny counted it',
    );
    assert.ok(
      ((await firewall.counters()).get('dns-like')?.packets ?? 0) >= 1,
      'the UDP rule counted its flow',
    );
  });

  test('firewall - ICMP: ping to a permitted host is answered, to another it is dropped; the gateway answers its LAN', async () => {
    assert.equal(await pingFrom(NS.lan, ADDR.server), true);
    assert.equal(await pingFrom(NS.lan, ADDR.unlisted), false, 'no rule permits ping to this address');
    assert.equal(await pingFrom(NS.lan, ADDR.gwLan), true, 'host-inbound ping on the lan zone');
    assert.equal(await pingFrom(NS.wan, ADDR.gwWan), false, 'the wan zone has no host-inbound services');
    assert.ok(((await firewall.counters()).get('ping-server')?.packets ?? 0) >= 1);
  });

  test('firewall - anti-spoofing: a LAN packet with a WAN-side source is dropped though a rule permits it', async () => {
    assert.match(
      await curlFrom(NS.lan, `http://${ADDR.server}:9090/`),
      /^peer=/,
      'the rule permits any source',
    );
    await runCommand('ip', ['-n', NS.lan, 'address', 'add', `${SPOOFED}/32`, 'dev', 'eth0']);
    try {
      const before = (await firewall.counters()).get('anti-spoofing')?.packets ?? 0;
      const spoofed = await runCommand(
        'ip',
        [
          'netns',
          'exec',
          NS.lan,
          'curl',
          '-sS',
          '-m',
          '2',
          '--interface',
          SPOOFED,
          `http://${ADDR.server}:9090/`,
        ],
        { timeoutMs: 10_000 },
      );
      assert.notEqual(spoofed.code, 0, `a spoofed source got through: ${spoofed.stdout}`);
      const after = (await firewall.counters()).get('anti-spoofing')?.packets ?? 0;
      assert.ok(after > before, 'the anti-spoofing rule dropped it');
    } finally {
      await runCommand('ip', ['-n', NS.lan, 'address', 'del', `${SPOOFED}/32`, 'dev', 'eth0']);
    }
  });

  test('firewall - a rate limit admits the burst and then about its rate of new flows', async () => {
    // 20 new flows at once: the burst (3) and perhaps one more from the 2/second refill pass
    const flood = await udpFrom(NS.lan, ADDR.server, 5301, 20);
    assert.ok(flood.answered >= 2 && flood.answered <= 5, `${flood.answered} of 20 flows were admitted`);
    // the limit's own drop rule (not the accept that follows it) counted the flows it refused
    const chain = await runCommand('ip', [
      'netns',
      'exec',
      NS.gw,
      'nft',
      'list',
      'chain',
      'inet',
      'moat',
      'filter_forward',
    ]);
    const dropped =
      /limit rate over 2\/second burst 3 packets counter packets (\d+) .* drop comment "rule limited"/.exec(
        chain.stdout,
      );
    assert.ok(dropped, chain.stdout);
    assert.equal(Number(dropped[1]), 20 - flood.answered, 'every refused flow was dropped by the limit');
    // once the bucket refills, a new flow passes again
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await udpFrom(NS.lan, ADDR.server, 5301)).answered, 1);
  });
});
