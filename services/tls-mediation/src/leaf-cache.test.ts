/** The leaf cache against a real Redis: reuse across instances, encryption at rest, another CA. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type RedisServer, startRedis } from '@moat/testkit';
import { Redis } from 'ioredis';
import { type InterceptionCa, loadOrCreateCa } from './ca.js';
import { issueLeaf, type LeafRequest } from './issuer.js';
import { LeafCache } from './leaf-cache.js';

describe('leaf cache', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-tls-cache-'));
  let server: RedisServer;
  let redis: Redis;
  let ca: InterceptionCa;
  let mints = 0;
  const issue = (cache: LeafCache, request: LeafRequest, authority = ca) =>
    cache.get(request, () => {
      mints++;
      return issueLeaf(authority, request, 72);
    });

  before(async () => {
    server = await startRedis();
    redis = new Redis(server.url);
    ca = await loadOrCreateCa({ dir: join(dir, 'ca') });
  });
  after(async () => {
    redis.disconnect();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('cache - a repeat is answered from memory; a restarted replica finds it in Redis, with the same certificate', async () => {
    const request = { sni: 'shop.example.test', dnsNames: ['example.test'] };
    const first = await issue(new LeafCache({ ca, redis }), request);
    assert.equal(first.source, 'issued');
    const cache = new LeafCache({ ca, redis });
    const fromRedis = await issue(cache, {
      sni: 'SHOP.example.test',
      dnsNames: ['example.test', 'shop.example.test'],
    });
    assert.equal(fromRedis.source, 'redis', 'the same names in another order and case are the same leaf');
    assert.equal(fromRedis.certificatePem, first.certificatePem);
    assert.equal(fromRedis.privateKeyPem, first.privateKeyPem);
    assert.equal((await issue(cache, request)).source, 'memory');
    assert.equal(mints, 1);
  });

  test('cache - the private key is encrypted in Redis; a tampered entry or another CA mints anew', async () => {
    const request = { sni: 'bank.example.test' };
    await issue(new LeafCache({ ca, redis }), request);
    const keys = await redis.keys('moat:tls:leaf:*');
    assert.ok(keys.length >= 1);
    for (const key of keys) {
      const value = (await redis.get(key)) ?? '';
      assert.doesNotMatch(value, /PRIVATE KEY/, 'no key material in the clear');
      assert.ok((await redis.pttl(key)) > 0, 'entries expire before their leaf');
    }
    const cache = new LeafCache({ ca, redis });
    const key = `moat:tls:leaf:${cache.keyOf(request)}`;
    const stored = JSON.parse((await redis.get(key)) ?? '{}') as { key: string };
    const bytes = Buffer.from(stored.key, 'base64');
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
    await redis.set(key, JSON.stringify({ ...stored, key: bytes.toString('base64') }));
    const before = mints;
    assert.equal((await issue(cache, request)).source, 'issued', 'the tampered entry was not used');
    assert.equal(mints, before + 1);

    const otherCa = await loadOrCreateCa({ dir: join(dir, 'other-ca') });
    const other = await issue(new LeafCache({ ca: otherCa, redis }), request, otherCa);
    assert.equal(other.source, 'issued', "another CA's replica does not use this CA's leaves");
  });

  test('cache - a leaf close to expiry is renewed', async () => {
    const cache = new LeafCache({ ca, redis, renewBeforeMs: 80 * 3600 * 1000 });
    const request = { sni: 'soon.example.test' };
    await issue(cache, request);
    assert.equal(
      (await issue(cache, request)).source,
      'issued',
      'a 72 h leaf is inside an 80 h renewal window',
    );
  });
});
