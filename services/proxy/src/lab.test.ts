/**
 * The proxy's acceptance, in the lab, the way a new user meets it: `moat lab up`, `moatctl apply`
 * of the demo policy, then curl in moat-lan — through the explicit proxy and, with no proxy
 * configured, through interception (the firewall service redirects web traffic that the demo's
 * clients-web rule inspects) — and the blocked request's trace at the lab's collector.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LAB_NAMESPACES } from '@moat/cli';
import { runCommand } from '@moat/testkit';
import {
  curlInLan as curl,
  labDown,
  labSkipReason,
  labUpWithDemoPolicy,
  LAB_PROXY as PROXY,
  labTrace as traceOf,
} from './testing/lab.js';

const reason = labSkipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING PROXY LAB TESTS: ${reason} !!!!!!!!\n`);

describe('proxy in the lab', { skip: reason }, () => {
  before(() => labUpWithDemoPolicy());
  after(() => labDown());

  test('lab - explicit proxy: an allowed site is 200, a gambling site the 403 block page with a trace id', async () => {
    const allowed = await curl('http://allowed.test/', '-x', PROXY);
    assert.equal(allowed.status, 200, allowed.stderr);
    assert.match(allowed.body, /Moat lab origin/);
    const blocked = await curl('http://casino.test/', '-x', PROXY);
    assert.equal(blocked.status, 403);
    assert.match(blocked.body, /blocked category "gambling"/);
    assert.match(blocked.body, /Security rule: clients-web/);
    assert.ok(blocked.traceId && blocked.body.includes(`Trace ID: ${blocked.traceId}`));

    const spans = await traceOf(blocked.traceId);
    const server = spans.find((s) => s.kind === 'SERVER');
    assert.equal(server?.status.code, 'ERROR');
    assert.equal(server?.attributes['moat.verdict'], 'block');
    assert.equal(server?.attributes['moat.engine'], 'web-filter');
    assert.equal(server?.attributes['moat.rule_id'], 'clients-web');
    assert.equal(server?.attributes['moat.category'], 'gambling');
    assert.ok(spans.some((s) => s.name === 'policy.decide'));
  });

  test('lab - interception: with no proxy configured, HTTP is filtered', async () => {
    const table = await runCommand('ip', [
      'netns',
      'exec',
      LAB_NAMESPACES.gw,
      'nft',
      'list',
      'table',
      'inet',
      'moat',
    ]);
    assert.match(
      table.stdout,
      /tcp dport 80 redirect to :3129 comment "rule clients-web"/,
      'the firewall applied the demo policy',
    );
    const allowed = await curl('http://allowed.test/');
    assert.equal(allowed.status, 200, allowed.stderr);
    const blocked = await curl('http://casino.test/');
    assert.equal(blocked.status, 403);
    assert.match(blocked.body, /gambling/);
    assert.ok(blocked.traceId);

    // HTTPS by interception: lab-tls.test.ts
  });

  test('lab - interception: a Host header that does not match the dialled address is refused (409)', async () => {
    const forged = await curl('http://192.0.2.10/', '-H', 'Host: no-such-site.invalid');
    assert.equal(forged.status, 409);
    assert.match(forged.body, /does not resolve|cannot be resolved/);
  });
});
