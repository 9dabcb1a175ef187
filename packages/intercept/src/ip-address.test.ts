import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatIPv4, formatIPv6, unmapIPv4 } from './ip-address.js';

test('ip-address - IPv6 text matches the WHATWG/RFC 5952 form for edge cases and random addresses', () => {
  const canonical = (bytes: Buffer) => {
    const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(i * 2).toString(16));
    return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
  };
  const cases = [
    '00000000000000000000000000000000',
    '00000000000000000000000000000001',
    'fd000098000000000000000000000050',
    '20010db8000000010000000000000001',
    '20010db8000000000001000000000001',
    '000100000000000100000000000000ff',
    'fe800000000000000000000000000000',
  ].map((hex) => Buffer.from(hex, 'hex'));
  for (let i = 0; i < 2000; i++) {
    // Mostly zeros, so runs of zero groups of every length and position come up.
    cases.push(
      Buffer.from(Array.from({ length: 16 }, () => (Math.random() < 0.7 ? 0 : (Math.random() * 256) | 0))),
    );
  }
  for (const bytes of cases) assert.equal(formatIPv6(bytes, 0), canonical(bytes), bytes.toString('hex'));
});

test('ip-address - IPv4 text and v4-mapped unmapping', () => {
  assert.equal(formatIPv4(Buffer.from([0, 0, 10, 99, 0, 50]), 2), '10.99.0.50');
  assert.equal(unmapIPv4('::ffff:10.98.0.1'), '10.98.0.1');
  assert.equal(unmapIPv4('fd00:98::1'), 'fd00:98::1');
  assert.equal(unmapIPv4('::ffff:1'), '::ffff:1');
});
