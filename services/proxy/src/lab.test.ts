/**
 * The proxy's acceptance, in the lab, the way a new user meets it: `moat lab up`, `moatctl apply`
 * of the demo policy, then curl in moat-lan — through the explicit proxy and, with no proxy
 * configured, through interception (the firewall service redirects web traffic that the demo's
 * clients-web rule inspects) — and the blocked request's trace at the lab's collector.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { LAB_CA_CERT, LAB_NAMESPACES, labPaths } from '@moat/cli';
import { type CollectedSpan, parseOtlpJsonLines, runCommand } from '@moat/testkit';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MOAT = `${ROOT}bin/moat`;
const MOATCTL = `${ROOT}bin/moatctl`;
const DEMO = `${ROOT}examples/policies/demo.yaml`;
const PROXY = 'http://10.70.1.1:3128';

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: the lab needs network namespaces (run the tests with sudo)';
  const namespaces = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (Object.values(LAB_NAMESPACES).some((ns) => namespaces.includes(ns))) {
    return 'a lab is already up (run `moat lab down` first); not touching it';
  }
  if (!existsSync('/opt/moat/otelcol/otelcol-moat') && !process.env.MOAT_OTELCOL_BIN) {
    return 'no OpenTelemetry Collector (run scripts/setup.sh): the trace check needs it';
  }
  return undefined;
}
const reason = skipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING PROXY LAB TESTS: ${reason} !!!!!!!!\n`);

/** curl in moat-lan; returns status code (or curl's exit code as "curl:<n>"), headers and body. */
async function curl(url: string, ...flags: string[]) {
  const result = await runCommand(
    'ip',
    ['netns', 'exec', LAB_NAMESPACES.lan, 'curl', '-sS', '-m', '8', '-D', '-', ...flags, url],
    { timeoutMs: 15_000 },
  );
  const [head = '', ...rest] = result.stdout.split('\r\n\r\n');
  return {
    status:
      result.code === 0 ? Number(/^HTTP\/1\.[01] (\d{3})/m.exec(head)?.[1] ?? 0) : `curl:${result.code}`,
    traceId: /^x-moat-trace-id: ([0-9a-f]{32})/im.exec(head)?.[1],
    body: rest.join('\r\n\r\n'),
    stderr: result.stderr,
  };
}

async function traceOf(traceId: string): Promise<CollectedSpan[]> {
  const file = labPaths().traces;
  for (let i = 0; i < 100; i++) {
    const spans = existsSync(file)
      ? parseOtlpJsonLines(readFileSync(file, 'utf8')).filter((s) => s.traceId === traceId)
      : [];
    if (spans.some((s) => s.kind === 'SERVER')) return spans;
    await sleep(100);
  }
  throw new Error(`trace ${traceId} did not reach the lab collector (${file})`);
}

describe('proxy in the lab', { skip: reason }, () => {
  before(async () => {
    const up = await runCommand(MOAT, ['lab', 'up'], { timeoutMs: 120_000 });
    assert.equal(up.code, 0, `moat lab up failed:\n${up.stdout}\n${up.stderr}`);
    const apply = await runCommand(MOATCTL, ['apply', '-f', DEMO, '--wait'], { timeoutMs: 30_000 });
    assert.equal(apply.code, 0, `moatctl apply failed:\n${apply.stdout}\n${apply.stderr}`);
  });
  after(async () => {
    await runCommand(MOAT, ['lab', 'down'], { timeoutMs: 60_000 });
  });

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

  test('lab - interception: with no proxy configured, HTTP is filtered and HTTPS is spliced or refused by SNI', async () => {
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

    const https = await curl('https://allowed.test/', '--cacert', LAB_CA_CERT);
    assert.equal(
      https.status,
      200,
      `spliced TLS reaches the origin with its own certificate: ${https.stderr}`,
    );
    const httpsBlocked = await curl('https://casino.test/', '--cacert', LAB_CA_CERT);
    assert.match(String(httpsBlocked.status), /^curl:/, 'a blocked SNI gets no TLS session');
  });

  test('lab - interception: a Host header that does not match the dialled address is refused (409)', async () => {
    const forged = await curl('http://192.0.2.10/', '-H', 'Host: no-such-site.invalid');
    assert.equal(forged.status, 409);
    assert.match(forged.body, /does not resolve|cannot be resolved/);
  });
});
