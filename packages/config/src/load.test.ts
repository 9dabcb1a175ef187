import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { z } from 'zod';
import {
  bool,
  byteSize,
  ConfigError,
  commaList,
  duration,
  loadConfig,
  port,
  redactUrl,
  url,
} from './index.js';

const schema = z
  .object({
    grpcPort: port().default(50051),
    natsUrl: url('nats').default('nats://127.0.0.1:4222'),
    expectedServices: commaList().default(['control']),
    shutdownTimeout: duration().default(10_000),
  })
  .strict();

test('config - defaults apply when the environment is empty', () => {
  const c = loadConfig({ service: 'x', schema, prefix: 'MOAT_X_', source: {} });
  assert.deepEqual(c, {
    grpcPort: 50051,
    natsUrl: 'nats://127.0.0.1:4222',
    expectedServices: ['control'],
    shutdownTimeout: 10_000,
  });
});

test('config - environment names derive from the prefix, shared keys can be renamed', () => {
  const c = loadConfig({
    service: 'x',
    schema,
    prefix: 'MOAT_X_',
    env: { natsUrl: 'MOAT_NATS_URL' },
    source: { MOAT_X_GRPC_PORT: '7000', MOAT_NATS_URL: 'nats://gw:4222', MOAT_X_SHUTDOWN_TIMEOUT: '2s' },
  });
  assert.equal(c.grpcPort, 7000);
  assert.equal(c.natsUrl, 'nats://gw:4222');
  assert.equal(c.shutdownTimeout, 2000);
});

test('config - one error lists every bad key by its environment name', () => {
  const err = (() => {
    try {
      loadConfig({
        service: 'x',
        schema,
        prefix: 'MOAT_X_',
        env: { natsUrl: 'MOAT_NATS_URL' },
        source: { MOAT_X_GRPC_PORT: '99999', MOAT_NATS_URL: 'http://nope', MOAT_X_SHUTDOWN_TIMEOUT: 'soon' },
      });
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.ok(err instanceof ConfigError);
  assert.deepEqual(err.issues.map((i) => i.key).sort(), [
    'MOAT_NATS_URL',
    'MOAT_X_GRPC_PORT',
    'MOAT_X_SHUTDOWN_TIMEOUT',
  ]);
  assert.match(err.message, /invalid configuration for x/);
});

/** A temp directory removed when the test ends. */
function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'moat-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('config - a file supplies values and the environment overrides it', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'grpcPort: 6000\nexpectedServices: [a, b]\n');
  const c = loadConfig({
    service: 'x',
    schema,
    prefix: 'MOAT_X_',
    file,
    source: { MOAT_X_GRPC_PORT: '6001' },
  });
  assert.equal(c.grpcPort, 6001);
  assert.deepEqual(c.expectedServices, ['a', 'b']);
});

test('config - an unknown key in the file is an error', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'grpcPrt: 6000\n');
  assert.throws(
    () => loadConfig({ service: 'x', schema, prefix: 'MOAT_X_', file, source: {} }),
    /unknown keys grpcPrt/,
  );
});

test('config - sizes take binary units and booleans the usual spellings; anything else is an error', () => {
  const sizes = z.object({ limit: byteSize(), flag: bool() });
  const load = (source: Record<string, string>) =>
    loadConfig({ service: 'x', schema: sizes, prefix: 'MOAT_X_', source });
  assert.deepEqual(load({ MOAT_X_LIMIT: '64KiB', MOAT_X_FLAG: 'yes' }), { limit: 65536, flag: true });
  assert.deepEqual(load({ MOAT_X_LIMIT: '10 MiB', MOAT_X_FLAG: 'off' }), {
    limit: 10 * 1024 * 1024,
    flag: false,
  });
  assert.deepEqual(load({ MOAT_X_LIMIT: '512', MOAT_X_FLAG: '0' }), { limit: 512, flag: false });
  assert.throws(
    () => load({ MOAT_X_LIMIT: '10 parsecs', MOAT_X_FLAG: 'true' }),
    /MOAT_X_LIMIT: must be a size/,
  );
  assert.throws(
    () => load({ MOAT_X_LIMIT: '1', MOAT_X_FLAG: 'maybe' }),
    /MOAT_X_FLAG: must be true or false/,
  );
});

test("config - redactUrl hides a URL's password and leaves everything else as it was", () => {
  assert.equal(redactUrl('redis://:s3cret@redis.example:6379/0'), 'redis://:***@redis.example:6379/0');
  assert.equal(redactUrl('nats://moat:s3cret@nats:4222'), 'nats://moat:***@nats:4222');
  assert.equal(redactUrl('nats://127.0.0.1:4222'), 'nats://127.0.0.1:4222');
  assert.equal(redactUrl('not a url'), 'not a url');
});
