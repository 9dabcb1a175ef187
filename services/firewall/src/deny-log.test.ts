import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeEvent, moatEventSchema } from '@moat/log';
import { deniedFlowEvent, parseUlogdRecord, ulogdConfig } from './deny-log.js';

// a record as ulogd 2.0.8's JSON output writes it (trimmed)
const RECORD = {
  timestamp: '2026-11-23T16:49:01.956179',
  'oob.prefix': 'moat-deny block-listed: ',
  'oob.in': 'lan0',
  'oob.out': 'wan0',
  'ip.protocol': 6,
  src_port: 41386,
  dest_port: 9999,
  src_ip: '10.71.1.10',
  dest_ip: '10.71.2.3',
};

test('deny log - a ulogd record becomes a denied flow naming the rule', () => {
  assert.deepEqual(parseUlogdRecord(JSON.stringify(RECORD)), {
    rule: 'block-listed',
    protocol: 'tcp',
    source: { ip: '10.71.1.10', port: 41386, interface: 'lan0' },
    destination: { ip: '10.71.2.3', port: 9999, interface: 'wan0' },
  });
  const icmp = parseUlogdRecord(
    JSON.stringify({
      'oob.prefix': 'moat-deny default: ',
      'ip.protocol': 1,
      'oob.in': 'wan0',
      'oob.out': '',
      src_ip: '203.0.113.9',
      dest_ip: '10.71.1.10',
    }),
  );
  assert.deepEqual(icmp, {
    rule: 'default',
    protocol: 'icmp',
    source: { ip: '203.0.113.9', interface: 'wan0' },
    destination: { ip: '10.71.1.10' },
  });
});

test('deny log - records that are not Moat denies, or not JSON, are ignored', () => {
  assert.equal(parseUlogdRecord(JSON.stringify({ ...RECORD, 'oob.prefix': 'someone else: ' })), undefined);
  assert.equal(parseUlogdRecord('{"truncated'), undefined);
  assert.equal(parseUlogdRecord(''), undefined);
});

test('deny log - ulogd reads the configured nflog group and writes JSON to the socket', () => {
  const config = ulogdConfig({ group: 7, socket: '/run/x/deny.sock', logFile: '/run/x/ulogd.log' });
  assert.match(config, /\[log1\]\ngroup=7\n/);
  assert.match(config, /mode="unix"\nfile="\/run\/x\/deny\.sock"/);
  assert.match(config, /stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON/);
});

test('deny log - a denied flow becomes an event the event schema accepts', () => {
  const flow = parseUlogdRecord(JSON.stringify(RECORD));
  assert.ok(flow);
  const event = makeEvent(deniedFlowEvent(flow, 'gw-1', 7));
  assert.equal(moatEventSchema.parse(event).rule, 'block-listed');
  assert.equal(event.reason, 'denied by rule block-listed');
  assert.equal(event.policyVersion, 7);
  assert.equal(
    deniedFlowEvent({ ...flow, rule: 'default' }, 'gw-1').reason,
    'no security rule permits the flow',
  );
});
