import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isAddressLiteral, parseAddress, parseIp } from './net.js';

function kindOf(text: string): string {
  const parsed = parseAddress(text);
  return 'error' in parsed ? `error: ${parsed.error}` : parsed.kind;
}

describe('net', () => {
  test('net - classifies addresses, prefixes, ranges and DNS names', () => {
    assert.equal(kindOf('192.0.2.1'), 'ip');
    assert.equal(kindOf('2001:db8::1'), 'ip');
    assert.equal(kindOf('::ffff:192.0.2.1'), 'ip');
    assert.equal(kindOf('10.0.0.0/8'), 'prefix');
    assert.equal(kindOf('0.0.0.0/0'), 'prefix');
    assert.equal(kindOf('::/0'), 'prefix');
    assert.equal(kindOf('2001:db8::/32'), 'prefix');
    assert.equal(kindOf('10.0.0.1-10.0.0.9'), 'range');
    assert.equal(kindOf('2001:db8::1-2001:db8::ff'), 'range');
    assert.equal(kindOf('updates.example.com'), 'dns');
  });

  test('net - rejects malformed addresses with a reason', () => {
    assert.match(kindOf('10.0.0.256'), /not a valid IPv4/);
    assert.match(kindOf('10.0.0.1/24'), /host bits set; use the network address 10\.0\.0\.0\/24/);
    assert.match(kindOf('2001:db8::1/64'), /use the network address 2001:db8::\/64/);
    assert.match(kindOf('10.0.0.0/33'), /must be 0-32/);
    assert.match(kindOf('2001:db8::/129'), /must be 0-128/);
    assert.match(kindOf('10.0.0.0/08'), /must be 0-32/);
    assert.match(kindOf('10.0.0.9-10.0.0.1'), /ends before it starts/);
    assert.match(kindOf('10.0.0.1-2001:db8::1'), /mixes IPv4 and IPv6/);
    assert.match(kindOf('fe80::1%eth0'), /not a valid IPv6/);
    assert.match(kindOf('not an address'), /not an IP address/);
    assert.match(kindOf('1.2.3'), /not a valid IPv4/);
  });

  test('net - computes address bounds as integers', () => {
    assert.deepEqual(parseIp('10.0.0.1'), { family: 4, value: 0x0a000001n });
    assert.deepEqual(parseIp('::ffff:192.0.2.1'), { family: 6, value: 0xffffc0000201n });
    assert.deepEqual(parseIp('2001:db8::1'), { family: 6, value: 0x20010db8000000000000000000000001n });
    const prefix = parseAddress('192.0.2.0/24');
    assert.ok(!('error' in prefix) && prefix.kind === 'prefix');
    assert.equal(prefix.last - prefix.first, 255n);
  });

  test('net - tells literals from names', () => {
    assert.equal(isAddressLiteral('10.0.0.0/8'), true);
    assert.equal(isAddressLiteral('lan-net'), false);
    assert.equal(isAddressLiteral('host.example.com'), false);
  });
});
