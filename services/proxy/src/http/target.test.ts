import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  BadTargetError,
  formatUrl,
  normaliseHost,
  parseAbsoluteTarget,
  parseConnectTarget,
  parseInterceptedTarget,
  redactedUrl,
} from './target.js';

describe('request targets', () => {
  test('absolute-form - scheme, host, default and explicit ports, path and query', () => {
    assert.deepEqual(parseAbsoluteTarget('http://Example.COM./a/b?c=d'), {
      scheme: 'http',
      host: 'example.com',
      port: 80,
      path: '/a/b?c=d',
    });
    assert.deepEqual(parseAbsoluteTarget('http://[2001:db8::1]:8080'), {
      scheme: 'http',
      host: '2001:db8::1',
      port: 8080,
      path: '/',
    });
    assert.equal(parseAbsoluteTarget('http://h.test?q').path, '/?q');
  });

  test('absolute-form - credentials, bad ports, other schemes and origin-form are refused', () => {
    for (const bad of [
      'http://u:p@h.test/',
      'http://h.test:0/',
      'http://h.test:65536/',
      'ftp://h.test/',
      '/path',
      'http://h..test/',
      'http://-h.test/',
      'http://999.1.1.1/',
    ]) {
      assert.throws(() => parseAbsoluteTarget(bad), BadTargetError, bad);
    }
  });

  test('CONNECT - host:port is required', () => {
    assert.deepEqual(parseConnectTarget('h.test:443'), {
      scheme: 'https',
      host: 'h.test',
      port: 443,
      path: '',
    });
    assert.equal(parseConnectTarget('[::1]:8443').host, '::1');
    for (const bad of ['h.test', 'h.test:', ':443', '[::1', 'h.test:443/x']) {
      assert.throws(() => parseConnectTarget(bad), BadTargetError, bad);
    }
  });

  test('intercepted - the Host header names the site; its port defaults to the original one', () => {
    assert.deepEqual(parseInterceptedTarget('/x', 'site.test', 80), {
      scheme: 'http',
      host: 'site.test',
      port: 80,
      path: '/x',
    });
    assert.equal(parseInterceptedTarget('/x', 'site.test:8080', 80).port, 8080);
    assert.throws(() => parseInterceptedTarget('/x', undefined, 80), BadTargetError);
  });

  test('hosts - IP literals and names normalise; junk does not', () => {
    assert.equal(normaliseHost('[2001:DB8::1]'), '2001:db8::1');
    assert.equal(normaliseHost('10.0.0.1'), '10.0.0.1');
    assert.throws(() => normaliseHost('a b'), BadTargetError);
    assert.throws(() => normaliseHost('[10.0.0.1]'), BadTargetError);
  });

  test('formatting - queries are dropped from the redacted URL only', () => {
    const target = parseAbsoluteTarget('http://h.test:8080/p?token=secret');
    assert.equal(formatUrl(target), 'http://h.test:8080/p?token=secret');
    assert.equal(redactedUrl(target), 'http://h.test:8080/p');
  });
});
