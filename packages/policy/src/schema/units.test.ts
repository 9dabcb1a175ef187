import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatRate, formatSize, parseDuration, parseRate, parseSize } from './units.js';

describe('units', () => {
  test('units - parses sizes in binary and decimal units', () => {
    assert.equal(parseSize('10MiB'), 10 * 2 ** 20);
    assert.equal(parseSize('512KiB'), 512 * 1024);
    assert.equal(parseSize('1.5GiB'), 1.5 * 2 ** 30);
    assert.equal(parseSize('5MB'), 5_000_000);
    assert.equal(parseSize('100B'), 100);
    assert.equal(parseSize(4096), 4096);
    assert.equal(parseSize('10M'), undefined);
    assert.equal(parseSize('10 megabytes'), undefined);
    assert.equal(parseSize(-1), undefined);
  });

  test('units - parses tc-style rates to bits per second', () => {
    assert.equal(parseRate('500kbit'), 500_000);
    assert.equal(parseRate('10mbit'), 10_000_000);
    assert.equal(parseRate('10Mbit'), 10_000_000);
    assert.equal(parseRate('1gbit'), 1_000_000_000);
    assert.equal(parseRate('2.5mbit'), 2_500_000);
    assert.equal(parseRate(64000), 64000);
    assert.equal(parseRate('10mbps'), undefined);
    assert.equal(parseRate('0mbit'), undefined);
    assert.equal(parseRate(0), undefined);
  });

  test('units - parses durations to seconds', () => {
    assert.equal(parseDuration('30s'), 30);
    assert.equal(parseDuration('10m'), 600);
    assert.equal(parseDuration('4h'), 14400);
    assert.equal(parseDuration('1d'), 86400);
    assert.equal(parseDuration(90), 90);
    assert.equal(parseDuration('1w'), undefined);
  });

  test('units - formats rates and sizes for messages', () => {
    assert.equal(formatRate(120_000_000), '120mbit');
    assert.equal(formatRate(1_500_000), '1.5mbit');
    assert.equal(formatRate(999), '999bit');
    assert.equal(formatSize(10 * 2 ** 20), '10MiB');
    assert.equal(formatSize(12), '12B');
  });
});
