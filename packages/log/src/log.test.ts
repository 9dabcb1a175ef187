import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createLogger, makeEvent } from './index.js';

test('logger - every line is JSON with service.name and level label', async () => {
  const out = new PassThrough();
  const lines: string[] = [];
  out.on('data', (b: Buffer) => lines.push(...b.toString().trim().split('\n')));
  const log = createLogger({ service: 'unit', level: 'info', destination: out });
  log.info({ user: { password: 'hunter2' } }, 'hello');
  log.debug('not shown');
  await new Promise((r) => setImmediate(r));
  assert.equal(lines.length, 1);
  const rec = JSON.parse(lines[0] ?? '{}');
  assert.equal(rec['service.name'], 'unit');
  assert.equal(rec.level, 'info');
  assert.equal(rec.msg, 'hello');
  assert.equal(rec.user.password, '[redacted]');
});

test('events - makeEvent stamps id and time and validates fields', () => {
  const e = makeEvent({
    tag: 'WEBFILTER_URL_BLOCKED',
    engine: 'web',
    action: 'blocked',
    reason: 'category gambling',
    service: 'proxy',
    category: 'gambling',
    source: { ip: '10.70.1.10', port: 51000, zone: 'lan' },
  });
  assert.match(e.id, /^[0-9a-f-]{36}$/);
  assert.equal(e.severity, 'info');
  assert.ok(!Number.isNaN(Date.parse(e.time)));
  assert.throws(() =>
    makeEvent({ tag: 'bad tag', engine: 'web', action: 'blocked', reason: 'x', service: 'proxy' }),
  );
  assert.throws(() =>
    makeEvent({ tag: 'X', engine: 'nope' as 'web', action: 'blocked', reason: 'x', service: 'proxy' }),
  );
});
