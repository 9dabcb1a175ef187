import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { z } from 'zod';
import { ConfigError, commaList, duration, loadConfig, port, url } from './index.js';

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

test('config - a file supplies values and the environment overrides it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-config-'));
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

test('config - an unknown key in the file is an error', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-config-'));
  const file = join(dir, 'c.yaml');
  writeFileSync(file, 'grpcPrt: 6000\n');
  assert.throws(
    () => loadConfig({ service: 'x', schema, prefix: 'MOAT_X_', file, source: {} }),
    /unknown keys grpcPrt/,
  );
});
