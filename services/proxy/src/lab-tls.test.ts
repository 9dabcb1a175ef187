/**
 * TLS mediation's acceptance, in the lab, as a new user meets it: `moat lab up`, the demo policy
 * (bump, banking bypassed), the Moat CA downloaded from the gateway, then curl in moat-lan through
 * the explicit proxy and through interception. The grade table follows Durumeric et al., "The
 * Security Impact of HTTPS Interception" (NDSS 2017): every defective upstream moat-wan serves must
 * be refused with its own reason, the valid one accepted.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BAD_TLS_VARIANTS, badTlsHost, LAB_CA_CERT, LAB_NAMESPACES, labPaths, readState } from '@moat/cli';
import { runCommand } from '@moat/testkit';
import {
  curlInLan,
  LAB_CA_ENDPOINT,
  LAB_PROXY,
  labDown,
  labSkipReason,
  labTrace,
  labUpWithDemoPolicy,
} from './testing/lab.js';

const reason = labSkipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING TLS MEDIATION LAB TESTS: ${reason} !!!!!!!!\n`);

/** What the block page must say for each defective upstream (the proxy's words, see upstream-tls.ts). */
const EXPECTED_REASON: Record<string, RegExp> = {
  expired: /certificate has expired/,
  'not-yet-valid': /certificate is not valid yet/,
  'wrong-host': /certificate is for another host name/,
  'self-signed': /certificate is self-signed/,
  'untrusted-root': /issued by an authority the gateway does not trust/,
  rsa1024: /weak key/,
  sha1: /signed with a weak algorithm/,
  tls10: /TLS version older than 1\.2/,
  tls11: /TLS version older than 1\.2/,
  'cbc-only': /none of the secure cipher suites/,
};

describe('TLS mediation in the lab', { skip: reason }, () => {
  let dir: string;
  let moatCa: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-lab-tls-'));
    await labUpWithDemoPolicy();
    // what a new user does first: fetch the CA from the gateway, from the LAN
    const ca = await curlInLan(`${LAB_CA_ENDPOINT}/ca.pem`);
    assert.equal(ca.status, 200, `the CA endpoint answers the LAN: ${ca.stderr}`);
    moatCa = join(dir, 'moat-ca.pem');
    writeFileSync(moatCa, ca.body);
  });
  after(async () => {
    await labDown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const viaProxy = (url: string, ...flags: string[]) => curlInLan(url, '-x', LAB_PROXY, ...flags);

  test('lab tls - the CA endpoint serves the Moat CA (PEM, DER, instructions), never a key', async () => {
    const cert = new X509Certificate(readFileSync(moatCa));
    assert.ok(cert.ca, 'a CA certificate');
    assert.match(cert.subject, /Moat/);
    const der = await curlInLan(`${LAB_CA_ENDPOINT}/ca.der`, '-o', join(dir, 'ca.der'));
    assert.equal(der.status, 200);
    assert.ok(new X509Certificate(readFileSync(join(dir, 'ca.der'))).raw.equals(cert.raw));
    const page = await curlInLan(`${LAB_CA_ENDPOINT}/`);
    assert.match(page.body, /ca\.pem/);
    assert.doesNotMatch(page.body + readFileSync(moatCa, 'utf8'), /PRIVATE KEY/);
  });

  test('lab tls - explicit proxy and interception: 200 through a certificate the Moat CA issued', async () => {
    for (const [how, get] of [
      ['explicit', viaProxy],
      ['intercepted', curlInLan],
    ] as const) {
      const reply = await get('https://allowed.test/', '--cacert', moatCa, '-v');
      assert.equal(reply.status, 200, `${how}: ${reply.stderr}`);
      assert.match(reply.body, /Moat lab origin/, how);
      assert.match(reply.stderr, /issuer: CN=Moat interception CA/, `${how}: the leaf is Moat's`);
      assert.match(reply.headers, /^via: .*moat/im, `${how}: the request went through the proxy`);
    }
  });

  test('lab tls - without the Moat CA trusted, curl refuses: the traffic really is mediated', async () => {
    // the lab CA alone would verify the origin's own certificate: failing proves Moat answered
    for (const get of [viaProxy, curlInLan]) {
      const reply = await get('https://allowed.test/', '--cacert', LAB_CA_CERT);
      assert.equal(reply.status, 'curl:60', reply.stderr);
    }
  });

  test('lab tls - a blocked category gets the block page over TLS, with its trace', async () => {
    for (const get of [viaProxy, curlInLan]) {
      const reply = await get('https://casino.test/', '--cacert', moatCa);
      assert.equal(reply.status, 403, reply.stderr);
      assert.match(reply.body, /gambling/);
      assert.ok(reply.traceId, 'the page names its trace');
    }
  });

  test('lab tls - a bypassed host (banking) is spliced: the client sees the origin certificate', async () => {
    for (const get of [viaProxy, curlInLan]) {
      const reply = await get('https://bank.test/', '--cacert', LAB_CA_CERT, '-v');
      assert.equal(reply.status, 200, reply.stderr);
      assert.doesNotMatch(reply.stderr, /issuer: CN=Moat/);
      assert.doesNotMatch(reply.headers, /^via: .*moat/im, 'nothing was decrypted');
    }
  });

  test('lab tls - grade: each defective upstream is refused with its reason, the valid one accepted', async () => {
    const rows: string[][] = [];
    const failures: string[] = [];
    const grade = async (name: string, host: string, defect: string, expected: RegExp | undefined) => {
      for (const [how, get] of [
        ['explicit', viaProxy],
        ['intercepted', curlInLan],
      ] as const) {
        const reply = await get(`https://${host}/`, '--cacert', moatCa);
        const said = /refused: ([^.<]+)/.exec(reply.body)?.[1] ?? '';
        const ok = expected
          ? reply.status === 502 && expected.test(reply.body) && !/Moat lab origin/.test(reply.body)
          : reply.status === 200;
        rows.push([name, defect, how, String(reply.status), ok ? 'PASS' : 'FAIL', said]);
        if (!ok)
          failures.push(
            `${name} (${how}): ${reply.status} ${said || reply.body.slice(0, 200)} ${reply.stderr}`,
          );
      }
    };
    await grade('valid', 'allowed.test', 'none', undefined);
    for (const variant of BAD_TLS_VARIANTS) {
      await grade(variant.name, badTlsHost(variant), variant.defect, EXPECTED_REASON[variant.name]);
    }
    console.log(
      `\nTLS interception grade (after Durumeric et al., NDSS 2017)\n${table(
        ['upstream', 'defect', 'path', 'status', 'grade', 'reason on the block page'],
        rows,
      )}`,
    );
    assert.deepEqual(failures, []);
  });

  test('lab tls - the client side is offered only TLS 1.2+ with AEAD suites', async () => {
    const handshake = async (...args: string[]) => {
      const result = await runCommand(
        'ip',
        [
          'netns',
          'exec',
          LAB_NAMESPACES.lan,
          'openssl',
          's_client',
          '-connect',
          'allowed.test:443',
          '-servername',
          'allowed.test',
          '-CAfile',
          moatCa,
          '-verify_return_error',
          ...args,
        ],
        { timeoutMs: 15_000 },
      );
      return /Verify return code: 0/.test(result.stdout) && result.code === 0;
    };
    assert.ok(await handshake('-tls1_3'), 'TLS 1.3');
    assert.ok(await handshake('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'), 'TLS 1.2 AEAD');
    assert.ok(!(await handshake('-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA')), 'TLS 1.2 CBC refused');
    assert.ok(!(await handshake('-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0')), 'TLS 1.1 refused');
  });

  test('lab tls - the bump is one trace: decision, upstream handshake and certificate issuance', async () => {
    const reply = await viaProxy('https://allowed.test/', '--cacert', moatCa);
    assert.equal(reply.status, 200, reply.stderr);
    assert.ok(reply.traceId, 'a bumped response names its trace');
    const spans = await labTrace(reply.traceId, (all) =>
      ['tls.certificate', 'tls.upstream_handshake'].every((name) => all.some((s) => s.name === name)),
    );
    const tunnel = spans.find((s) => s.attributes['moat.tls.action'] === 'bump');
    assert.ok(tunnel, `a span records the bump decision: ${spans.map((s) => s.name).join(', ')}`);
    const certificate = spans.find((s) => s.name === 'tls.certificate');
    assert.ok(
      certificate?.attributes['moat.tls.certificate_source'],
      'the issuance span says where the leaf came from',
    );
  });

  test('lab tls - tls-mediation mints only for the proxy: its gRPC port wants the proxy certificate (mutual TLS)', async () => {
    const tls = join(labPaths().root, 'tls', 'services');
    const handshake = (...clientCert: string[]) =>
      runCommand('ip', [
        'netns',
        'exec',
        LAB_NAMESPACES.gw,
        'openssl',
        's_client',
        '-tls1_2', // with 1.2 the server's refusal of a missing certificate ends the handshake itself
        '-connect',
        '127.0.0.1:50053',
        '-CAfile',
        join(tls, 'ca.crt'),
        ...clientCert,
      ]);
    const anonymous = await handshake();
    assert.notEqual(anonymous.code, 0, anonymous.stdout);
    assert.match(anonymous.stderr, /alert handshake failure/);
    const proxy = await handshake('-cert', join(tls, 'proxy.crt'), '-key', join(tls, 'proxy.key'));
    assert.equal(proxy.code, 0, proxy.stderr);
    assert.match(proxy.stdout, /Verify return code: 0/);
    const key = statSync(join(tls, 'proxy.key'));
    assert.equal(key.mode & 0o077, 0, 'the proxy key is private');
  });

  test('lab tls - the proxy runs as nobody and cannot open the CA private key', async () => {
    const state = readState();
    const proxy = state?.processes.find((p) => p.name === 'proxy');
    assert.ok(proxy, 'the lab recorded the proxy');
    const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${proxy.pid}/status`, 'utf8'))?.[1];
    assert.equal(uid, '65534', 'the proxy process runs as nobody');
    const key = join(labPaths().root, 'tls-mediation', 'ca.key');
    assert.ok(statSync(key).isFile(), 'tls-mediation generated its CA key');
    const open = await runCommand('setpriv', [
      '--reuid=nobody',
      '--regid=nogroup',
      '--clear-groups',
      'cat',
      key,
    ]);
    assert.notEqual(open.code, 0);
    assert.match(open.stderr, /Permission denied/);
  });
});

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
