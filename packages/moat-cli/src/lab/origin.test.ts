import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createOriginServer } from './origin.js';

const server = createOriginServer();
let base = '';

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('origin - / serves a small HTML page', async () => {
  const res = await fetch(`${base}/`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/html/);
  assert.match(await res.text(), /Moat lab origin/);
});

test('origin - /bytes/<n> returns exactly n bytes', async () => {
  for (const n of [0, 1, 65_536, 200_001]) {
    const res = await fetch(`${base}/bytes/${n}`);
    assert.equal(res.status, 200);
    assert.equal((await res.arrayBuffer()).byteLength, n);
  }
});

test('origin - /echo returns the request headers as JSON', async () => {
  const res = await fetch(`${base}/echo`, { headers: { 'x-moat-test': 'yes' } });
  const body = (await res.json()) as { headers: Record<string, string>; method: string };
  assert.equal(body.method, 'GET');
  assert.equal(body.headers['x-moat-test'], 'yes');
});

test('origin - /healthz is ok and unknown paths are 404', async () => {
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
});
