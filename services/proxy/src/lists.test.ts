import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Origin,
  type ProxyHarness,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from './testing/harness.js';

describe('URL lists', () => {
  const lists = mkdtempSync(join(tmpdir(), 'moat-ut1-'));
  let origin: Origin;
  let h: ProxyHarness;

  before(async () => {
    mkdirSync(join(lists, 'adult'));
    writeFileSync(join(lists, 'adult', 'domains'), '# UT1 style\nadult.test\n');
    writeFileSync(join(lists, 'adult', 'urls'), '127.0.0.1/members\n');
    origin = await startOrigin();
    h = await startProxyHarness({
      policy: `
apiVersion: moat/v1
kind: Policy
metadata: { name: lists-test }
objects:
  urlCategories:
    adult: { source: ${lists}, categories: [adult] }
profiles:
  webFiltering:
    wf: { blockCategories: [adult] }
utmPolicies:
  web: { http: { webFiltering: wf } }
securityRules:
  - { name: all, fromZones: any, toZones: any, source: any, destination: any, service: any, action: permit, utmPolicy: web }
`,
      env: { MOAT_PROXY_LIST_RELOAD_INTERVAL: '200ms' },
    });
  });
  after(async () => {
    await h?.stop();
    await origin?.close();
    rmSync(lists, { recursive: true, force: true });
  });

  test('lists - domains and URL prefixes from a UT1 directory block; their size is reported', async () => {
    assert.equal((await viaProxy(h.proxyPort, 'http://www.adult.test/')).status, 403);
    assert.equal((await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/members/area`)).status, 403);
    assert.equal((await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/public`)).status, 200);
    const metrics = await (await fetch(`http://127.0.0.1:${h.httpPort}/metrics`)).text();
    assert.match(metrics, /^moat_proxy_url_list_entries\{[^}]*\} 2$/m);
    assert.match(metrics, /^moat_proxy_url_list_bytes\{[^}]*\} [1-9]\d*$/m);
  });

  test('lists - an edited list file is picked up without a restart, and a kept-alive connection survives it', async () => {
    const { Agent } = await import('node:http');
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const base = `http://127.0.0.1:${origin.port}`;
    assert.equal((await viaProxy(h.proxyPort, `${base}/new-area`, { agent })).status, 200);
    const connectionsBefore = origin.connections;
    writeFileSync(join(lists, 'adult', 'urls'), '127.0.0.1/members\n127.0.0.1/new-area\n');
    let result = 200;
    for (let i = 0; i < 50 && result === 200; i++) {
      await sleep(100);
      result = (await viaProxy(h.proxyPort, `${base}/new-area`, { agent })).status;
    }
    assert.equal(result, 403, 'the new entry blocks within a few reload intervals');
    assert.equal((await viaProxy(h.proxyPort, `${base}/still-fine`, { agent })).status, 200);
    assert.equal(origin.connections, connectionsBefore, 'the proxy kept its pooled upstream connection');
    agent.destroy();
  });
});
