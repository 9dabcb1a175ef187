import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RedisServer, startRedis } from '@moat/testkit';
import { headers } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import { CURRENT_VERSION_KEY, VerdictCache } from './cache.js';
import { readJobMeta, SCAN_HEADER, ScanJobError } from './contract.js';

const HASH = 'a'.repeat(64);

function jobHeaders(overrides: Record<string, string | undefined> = {}) {
  const h = headers();
  const values: Record<string, string | undefined> = {
    [SCAN_HEADER.id]: 'job-1',
    [SCAN_HEADER.replyTo]: '_INBOX.x.job-1',
    [SCAN_HEADER.sha256]: HASH,
    [SCAN_HEADER.size]: '68',
    [SCAN_HEADER.deadline]: String(Date.now() + 1000),
    ...overrides,
  };
  for (const [k, v] of Object.entries(values)) if (v !== undefined) h.set(k, v);
  return h;
}

test('scan - a job header set is read whole; each bad header is named', () => {
  const meta = readJobMeta(jobHeaders({ [SCAN_HEADER.object]: 'job-1', [SCAN_HEADER.direction]: 'upload' }));
  assert.equal(meta.size, 68);
  assert.equal(meta.object, 'job-1');
  assert.equal(meta.direction, 'upload');
  assert.equal(readJobMeta(jobHeaders()).direction, 'download');
  assert.throws(() => readJobMeta(undefined), ScanJobError);
  const bad: [string, string | undefined, RegExp][] = [
    [SCAN_HEADER.sha256, 'xyz', /Moat-Scan-Sha256 is not a hex SHA-256/],
    [SCAN_HEADER.size, '-1', /Moat-Scan-Size is not a size/],
    [SCAN_HEADER.size, '1.5', /Moat-Scan-Size is not a size/],
    [SCAN_HEADER.deadline, 'soon', /Moat-Scan-Deadline is not a time/],
    [SCAN_HEADER.replyTo, undefined, /no Moat-Reply-To header/],
    [SCAN_HEADER.replyTo, 'events.av.clean', /must be an _INBOX subject/],
    [SCAN_HEADER.replyTo, '_INBOX.a.>', /must be an _INBOX subject/],
  ];
  for (const [key, value, message] of bad)
    assert.throws(() => readJobMeta(jobHeaders({ [key]: value })), message, `${key}=${value}`);
});

describe('verdict cache (real Redis)', () => {
  let redis: RedisServer;
  let client: Redis;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    client?.disconnect();
    await redis?.stop();
  });

  test('scan - verdicts are keyed by signature version: a new version misses what the old one cached', async () => {
    const cache = new VerdictCache(client, { versionRefreshMs: 0 });
    await cache.put('v1', HASH, { result: 'infected', signature: 'Sig.A' });
    assert.deepEqual(await cache.get('v1', HASH), { result: 'infected', signature: 'Sig.A' });
    assert.equal(await cache.get('v2', HASH), undefined);
    assert.equal(await cache.lookup(HASH), undefined, 'no version announced: no lookup');
    await cache.announceVersion('v1', new Date('2026-01-01T00:00:00Z'));
    assert.deepEqual(await cache.lookup(HASH), { result: 'infected', signature: 'Sig.A', version: 'v1' });
    await cache.announceVersion('v2', new Date('2026-01-02T00:00:00Z'));
    assert.equal(await cache.lookup(HASH), undefined, 'a signature update invalidates by construction');
    assert.equal(await cache.currentVersion(), 'v2');
  });

  test('scan - a worker with older signatures cannot move proxies back to the old version; the same build renews it', async () => {
    const cache = new VerdictCache(client, { versionRefreshMs: 0 });
    const older = new Date('2026-03-01T00:00:00Z');
    const newer = new Date('2026-03-02T00:00:00Z');
    assert.equal(await cache.announceVersion('daily-2', newer), true);
    assert.equal(await cache.announceVersion('daily-1', older), false, 'a lagging worker changes nothing');
    assert.equal(await cache.currentVersion(), 'daily-2');
    await client.pexpire(CURRENT_VERSION_KEY, 1000);
    assert.equal(await cache.announceVersion('daily-2', newer), true, 'the same build renews it');
    assert.ok((await client.pttl(CURRENT_VERSION_KEY)) > 20 * 60_000, 'renewed for three renewal periods');
    assert.ok((await client.pttl(CURRENT_VERSION_KEY)) <= 30 * 60_000, 'and no longer');
    // the same version from a pod whose files are dated earlier (written at its start) renews it too
    assert.equal(await cache.announceVersion('daily-2', older), true, 'the same version is never "older"');
    assert.equal(await cache.currentVersion(), 'daily-2');
    assert.equal(await cache.announceVersion('daily-3', new Date('2026-03-03T00:00:00Z')), true);
    assert.equal(await cache.currentVersion(), 'daily-3');
  });

  test('scan - a damaged or implausible cache entry is a miss, never a verdict', async () => {
    const cache = new VerdictCache(client);
    for (const raw of ['not json', '{"result":"infected"}', '{"result":"maybe"}', '[]']) {
      await client.set(`moat:av:verdict:v9:${HASH}`, raw);
      assert.equal(await cache.get('v9', HASH), undefined, raw);
    }
  });
});
