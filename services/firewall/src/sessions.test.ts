import assert from 'node:assert/strict';
import { test } from 'node:test';
import { QueryArgumentError } from '@moat/service-kit';
import { matchesFilter, parseConntrackLine, parseSessionFilter } from './sessions.js';

const SNAT_TCP =
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.70.1.10 dst=203.0.113.10 sport=40000 dport=443 src=203.0.113.10 dst=203.0.113.1 sport=443 dport=61000 [ASSURED] mark=17 use=1';
const UNREPLIED_UDP =
  'ipv4     2 udp      17 29 src=10.70.1.10 dst=203.0.113.53 sport=5353 dport=53 packets=1 bytes=60 [UNREPLIED] src=203.0.113.53 dst=10.70.1.10 sport=53 dport=5353 packets=0 bytes=0 mark=0 use=1';
const ICMP =
  'ipv4     2 icmp     1 29 src=10.70.1.10 dst=203.0.113.10 type=8 code=0 id=7 src=203.0.113.10 dst=10.70.1.10 type=0 code=0 id=7 mark=0 use=1';
const IPV6 =
  'ipv6     10 tcp      6 119 TIME_WAIT src=fd00::10 dst=fd00:1::2 sport=50000 dport=80 src=fd00:1::2 dst=fd00::10 sport=80 dport=50000 [ASSURED] mark=0 use=1';

test('sessions - a TCP entry with source NAT: both tuples, state, flags and mark', () => {
  assert.deepEqual(parseConntrackLine(SNAT_TCP), {
    family: 4,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    timeout: 431999,
    original: { source: '10.70.1.10', destination: '203.0.113.10', sourcePort: 40000, destinationPort: 443 },
    reply: { source: '203.0.113.10', destination: '203.0.113.1', sourcePort: 443, destinationPort: 61000 },
    flags: ['ASSURED'],
    mark: 17,
  });
});

test('sessions - UDP with accounting, ICMP and IPv6 entries parse; other lines do not', () => {
  const udp = parseConntrackLine(UNREPLIED_UDP);
  assert.equal(udp?.state, undefined);
  assert.deepEqual(udp?.flags, ['UNREPLIED']);
  assert.equal(udp?.original.bytes, 60);
  assert.equal(udp?.reply.packets, 0);
  const icmp = parseConntrackLine(ICMP);
  assert.equal(icmp?.original.icmpType, 8);
  assert.equal(icmp?.reply.icmpType, 0);
  assert.equal(parseConntrackLine(IPV6)?.family, 6);
  assert.equal(parseConntrackLine(IPV6)?.original.destination, 'fd00:1::2');
  assert.equal(
    parseConntrackLine('conntrack v1.4.7 (conntrack-tools): 3 flow entries have been shown.'),
    undefined,
  );
  assert.equal(parseConntrackLine(''), undefined);
});

test('sessions - filters match either end, before or after NAT', () => {
  const s = parseConntrackLine(SNAT_TCP);
  assert.ok(s);
  const f = (args: Record<string, unknown>) => matchesFilter(s, parseSessionFilter(args));
  assert.ok(f({}));
  assert.ok(f({ source: '10.70.1.10' }));
  assert.ok(f({ destination: '203.0.113.10', protocol: 'tcp', port: 443, state: 'established' }));
  assert.ok(f({ port: 61000 }), 'the NATed source port');
  assert.ok(!f({ protocol: 'udp' }));
  assert.ok(!f({ source: '10.70.1.99' }));
  assert.ok(!f({ state: 'TIME_WAIT' }));
  assert.ok(!f({ port: 80 }));
});

test('sessions - bad filter arguments are refused naming the field', () => {
  assert.equal(parseSessionFilter({}).limit, 100);
  for (const [args, field] of [
    [{ port: 70000 }, 'port'],
    [{ limit: 0 }, 'limit'],
    [{ protocol: 'TCP!' }, 'protocol'],
    [{ limit: 5000 }, 'limit'],
    [{ colour: 'red' }, 'arguments'],
  ] as const) {
    assert.throws(
      () => parseSessionFilter(args),
      (err: unknown) => err instanceof QueryArgumentError && err.message.startsWith(`sessions: ${field}`),
      JSON.stringify(args),
    );
  }
});
