import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildCategorizer } from '@moat/urlfilter';
import { parseAbsoluteTarget } from '../http/target.js';
import { policyFrom } from '../testing/harness.js';
import { compileProxyPolicy } from './compile.js';
import {
  dispositionFileName,
  extensionsOf,
  type Flow,
  filterRequest,
  filterResponse,
  filterUrl,
  matchRule,
  ruleVerdict,
} from './decide.js';
import { RouteTable } from './routes.js';

const POLICY = `
apiVersion: moat/v1
kind: Policy
metadata: { name: decide-test }
zones:
  lan: { interfaces: [lan0] }
  wan: { interfaces: [wan0] }
objects:
  addresses:
    lan-net: 10.70.1.0/24
    boss: 10.70.1.99
  urlPatterns:
    always-ok: [ok.casino.test]
    nope: ["*.ads.test", "news.test/paywall"]
  urlCategories:
    gambling: { domains: [casino.test] }
    news: { domains: [news.test] }
  schedules:
    never-on-sunday:
      windows: [{ days: [sun], start: "00:00", end: "24:00" }]
profiles:
  webFiltering:
    strict:
      blockCategories: [gambling, news]
      allowCategories: []
      blockUrlPatterns: [nope]
      allowUrlPatterns: [always-ok]
    whitelist:
      defaultAction: block
      allowCategories: [news]
  contentFiltering:
    c: { blockExtensions: [exe, tar.gz], blockMimeTypes: ["video/*", application/x-msdownload], maxRequestBodySize: 10, maxResponseBodySize: 100 }
utmPolicies:
  strict: { http: { webFiltering: strict, contentFiltering: c } }
  whitelist: { http: { webFiltering: whitelist } }
securityRules:
  - { name: boss-sunday, fromZones: lan, toZones: wan, source: boss, destination: any, service: web, schedule: never-on-sunday, action: deny }
  - { name: boss, fromZones: lan, toZones: wan, source: boss, destination: any, service: web, action: permit, utmPolicy: whitelist }
  - { name: staff, fromZones: lan, toZones: wan, source: lan-net, destination: any, service: web, action: permit, utmPolicy: strict }
`;

const flow = (over: Partial<Flow> = {}): Flow => ({
  clientIp: '10.70.1.10',
  clientZone: 'lan',
  serverIp: '192.0.2.10',
  serverZone: 'wan',
  host: 'site.test',
  port: 80,
  ...over,
});
const MONDAY = new Date('2026-11-23T10:00:00Z');
const SUNDAY = new Date('2026-11-22T10:00:00Z');

describe('decisions', async () => {
  const policy = await compileProxyPolicy(policyFrom(POLICY), 7);
  const categorizer = await buildCategorizer(policy.categorySources);

  test('rules - first match by zone, source, service and schedule; nothing matching is denied', () => {
    assert.equal(matchRule(policy, flow(), MONDAY)?.name, 'staff');
    assert.equal(matchRule(policy, flow({ clientIp: '10.70.1.99' }), MONDAY)?.name, 'boss');
    assert.equal(matchRule(policy, flow({ clientIp: '10.70.1.99' }), SUNDAY)?.name, 'boss-sunday');
    assert.equal(
      matchRule(policy, flow({ port: 8080 }), MONDAY),
      undefined,
      'service web is 80 and 443 only',
    );
    assert.equal(matchRule(policy, flow({ clientZone: 'wan' }), MONDAY), undefined);
    assert.equal(matchRule(policy, flow({ clientIp: '10.70.2.1' }), MONDAY), undefined);
    assert.equal(ruleVerdict(undefined)?.status, 403);
    assert.match(
      ruleVerdict(matchRule(policy, flow({ clientIp: '10.70.1.99' }), SUNDAY))?.reason ?? '',
      /boss-sunday" denies/,
    );
  });

  test('URL filtering - precedence: allow patterns, block patterns, allowed categories, blocked ones, default', () => {
    const strict = policy.rules.find((r) => r.name === 'staff')?.http?.webFilter;
    const whitelist = policy.rules.find((r) => r.name === 'boss')?.http?.webFilter;
    assert.ok(strict && whitelist);
    const url = (u: string) => parseAbsoluteTarget(u);
    assert.equal(filterUrl(strict, url('http://ok.casino.test/'), categorizer).action, 'allow');
    assert.equal(filterUrl(strict, url('http://www.casino.test/'), categorizer).category, 'gambling');
    assert.equal(filterUrl(strict, url('http://x.ads.test/'), categorizer).pattern, 'nope: *.ads.test');
    assert.equal(
      filterUrl(strict, url('http://news.test/paywall/1'), categorizer).pattern,
      'nope: news.test/paywall',
    );
    assert.equal(filterUrl(strict, url('http://elsewhere.test/'), categorizer).action, 'allow');
    assert.equal(filterUrl(whitelist, url('http://news.test/'), categorizer).action, 'allow');
    const other = filterUrl(whitelist, url('http://elsewhere.test/'), categorizer);
    assert.equal(other.action, 'block');
    assert.match(other.reason, /blocks everything else/);
  });

  test('content filtering - extensions (double ones too), types, names and sizes', () => {
    const c = policy.rules.find((r) => r.name === 'staff')?.http?.contentFilter;
    assert.ok(c);
    assert.equal(filterRequest(c, parseAbsoluteTarget('http://h.test/a/setup.EXE'), undefined)?.status, 403);
    assert.equal(
      filterRequest(c, parseAbsoluteTarget('http://h.test/src.tar.gz?x=1'), undefined)?.status,
      403,
    );
    assert.equal(
      filterRequest(c, parseAbsoluteTarget('http://h.test/setup%2Eexe'), undefined)?.status,
      403,
      'escaped dot',
    );
    assert.equal(filterRequest(c, parseAbsoluteTarget('http://h.test/exe/'), undefined), undefined);
    assert.equal(filterRequest(c, parseAbsoluteTarget('http://h.test/upload'), 11)?.status, 413);
    assert.equal(filterResponse(c, { declaredType: 'video/webm' })?.status, 403);
    assert.equal(
      filterResponse(c, {
        declaredType: 'text/plain',
        sniffed: { mime: 'application/x-msdownload', ext: 'exe' },
      })?.status,
      403,
    );
    assert.equal(filterResponse(c, { fileName: 'report.exe' })?.status, 403);
    assert.equal(filterResponse(c, { contentLength: 101 })?.status, 403);
    assert.equal(filterResponse(c, { declaredType: 'text/html', contentLength: 100 }), undefined);
    assert.deepEqual(extensionsOf('a.tar.gz'), ['tar.gz', 'gz']);
    assert.equal(dispositionFileName(`attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.exe`), 'résumé.exe');
    assert.equal(dispositionFileName('attachment; filename="a b.zip"'), 'a b.zip');
  });

  test('zones - interfaces come from the routing table, longest prefix first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'moat-routes-'));
    writeFileSync(
      join(dir, 'route'),
      [
        'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
        'wan0\t00000000\t027100CB\t0003\t0\t0\t0\t00000000\t0\t0\t0',
        'lan0\t0001460A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'ipv6_route'),
      'fd000070000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     lan0\n',
    );
    try {
      const routes = new RouteTable(dir);
      assert.equal(routes.interfaceFor('10.70.1.10'), 'lan0');
      assert.equal(routes.interfaceFor('::ffff:10.70.1.10'), 'lan0');
      assert.equal(routes.interfaceFor('192.0.2.10'), 'wan0');
      assert.equal(routes.interfaceFor('fd00:70:1::10'), 'lan0');
      assert.equal(policy.zoneOfInterface.get('lan0'), 'lan');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
