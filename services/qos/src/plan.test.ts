import assert from 'node:assert/strict';
import { test } from 'node:test';
import { htbQuantum, ifbName, planQos } from './plan.js';
import { parseClassStats, treeCommands } from './tc.js';
import { EGRESS_POLICY, INGRESS_POLICY, NO_QOS_POLICY } from './testing/policies.js';

test('plan - one tree per shaped interface and direction, class ids shared with the firewall (from the class names)', () => {
  const trees = planQos(INGRESS_POLICY);
  assert.deepEqual(
    trees.map((tree) => [tree.interface, tree.direction, tree.device, tree.rate, tree.defaultMinor]),
    [
      ['wan0', 'egress', 'wan0', 100e6, 0xdd8e],
      ['wan0', 'ingress', 'moq-wan0', 12e6, 0xdd8e],
    ],
  );
  // bulk has no ceil: it may borrow up to the tree's rate, which differs per direction
  assert.deepEqual(
    trees.map((tree) => tree.classes.map((cls) => [cls.name, cls.minor, cls.rate, cls.ceil, cls.priority])),
    [
      [
        ['bulk', 0xdd8e, 2e6, 100e6, 6],
        ['capped', 0x2f68, 5e6, 10e6, 2],
      ],
      [
        ['bulk', 0xdd8e, 2e6, 12e6, 6],
        ['capped', 0x2f68, 5e6, 10e6, 2],
      ],
    ],
  );
  assert.deepEqual(planQos(NO_QOS_POLICY), []);
});

test('plan - IFB names fit the 15-character limit and stay distinct for long interface names', () => {
  assert.equal(ifbName('wan0'), 'moq-wan0');
  assert.equal(ifbName('enp0s31f6u1'), 'moq-enp0s31f6u1', 'an 11-character name fits as it is');
  // the longest names the policy allows (15 characters) differ only at the end
  const a = ifbName('enp0s31f6uplnk1');
  const b = ifbName('enp0s31f6uplnk2');
  assert.ok(a.length <= 15 && b.length <= 15, `${a} ${b}`);
  assert.notEqual(a, b);
  assert.ok(a.startsWith('moq-') && b.startsWith('moq-'));
});

test('plan - quantum is 1/100 s at the rate, kept between one frame and the kernel limit', () => {
  assert.equal(htbQuantum(10e6), 12_500);
  assert.equal(htbQuantum(64e3), 1514);
  assert.equal(htbQuantum(10e9), 200_000);
});

test('tc - a tree with the same default class is updated in place; another default rebuilds it', () => {
  const [tree] = planQos(EGRESS_POLICY);
  assert.ok(tree);
  const fresh = treeCommands(tree, undefined, []);
  assert.equal(fresh[0], 'qdisc replace dev wan0 root handle 1: htb default dd8e');
  assert.match(
    fresh[1] ?? '',
    /^class replace dev wan0 parent 1: classid 1:1 .*htb rate 30000000bit ceil 30000000bit/,
  );
  assert.ok(
    fresh.some((c) => /classid 1:2f68 .* prio 2 quantum 6250$/.test(c)),
    fresh.join('\n'),
  );

  const inPlace = treeCommands(
    tree,
    { kind: 'htb', handle: '1:', defaultMinor: 0xdd8e },
    [1, 0xdd8e, 0x2f68, 0x2a],
  );
  assert.ok(!inPlace.some((c) => c.startsWith('qdisc')), 'no qdisc change');
  assert.equal(
    inPlace.at(-1),
    'class del dev wan0 classid 1:2a',
    'a class the tree no longer has is deleted',
  );

  const rebuilt = treeCommands(tree, { kind: 'htb', handle: '1:', defaultMinor: 0x2f68 }, [1, 0xdd8e]);
  assert.deepEqual(rebuilt.slice(0, 2), [
    'qdisc del dev wan0 root',
    'qdisc replace dev wan0 root handle 1: htb default dd8e',
  ]);
});

test('tc - class statistics are read from tc -s class show', () => {
  const stats =
    parseClassStats(`class htb 1:11 parent 1:1 prio 0 rate 10Mbit ceil 10Mbit burst 1600b cburst 1600b 
 Sent 123456 bytes 321 pkt (dropped 4, overlimits 56 requeues 0) 
 rate 9.6Mbit 800pps backlog 3028b 2p requeues 0
 lended: 10 borrowed: 7 giants: 0
 tokens: 20000 ctokens: 20000

class htb 1:1 root rate 100Mbit ceil 100Mbit burst 1600b cburst 1600b 
 Sent 90 bytes 1 pkt (dropped 0, overlimits 0 requeues 0) 
 backlog 0b 0p requeues 0
 lended: 0 borrowed: 0 giants: 0
`);
  assert.deepEqual(stats, [
    {
      minor: 0x11,
      bytes: 123456,
      packets: 321,
      drops: 4,
      overlimits: 56,
      rateBps: 9_600_000,
      ratePps: 800,
      backlogBytes: 3028,
      backlogPackets: 2,
      borrowed: 7,
    },
    {
      minor: 1,
      bytes: 90,
      packets: 1,
      drops: 0,
      overlimits: 0,
      backlogBytes: 0,
      backlogPackets: 0,
      borrowed: 0,
    },
  ]);
});
