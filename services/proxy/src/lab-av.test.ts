/**
 * The antivirus acceptance, in the lab, the way a new user meets it: `moat lab up` (clamd with the
 * test signatures and an av-scanner worker beside the other services), the demo policy, then curl in
 * moat-lan downloading EICAR — through the explicit proxy, through interception, and over bumped
 * HTTPS — and the blocked request's trace at the lab's collector; `moatctl status` for the workers.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCommand } from '@moat/testkit';
import {
  curlInLan as curl,
  LAB_CA_ENDPOINT,
  labDown,
  labSkipReason,
  labUpWithDemoPolicy,
  MOATCTL,
  LAB_PROXY as PROXY,
  labTrace as traceOf,
} from './testing/lab.js';

const reason = labSkipReason();
if (reason) console.error(`\n!!!!!!!! SKIPPING ANTIVIRUS LAB TESTS: ${reason} !!!!!!!!\n`);

const EICAR_SIGNATURE = 'Moat.Test.EICAR-Body.UNOFFICIAL';

describe('antivirus in the lab', { skip: reason }, () => {
  let dir: string;
  let moatCa: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-lab-av-'));
    await labUpWithDemoPolicy();
    const ca = await curl(`${LAB_CA_ENDPOINT}/ca.pem`);
    assert.equal(ca.status, 200, ca.stderr);
    moatCa = join(dir, 'moat-ca.pem');
    writeFileSync(moatCa, ca.body);
  });
  after(async () => {
    await labDown();
    rmSync(dir, { recursive: true, force: true });
  });

  test('lab av - EICAR through the explicit proxy: block page naming the signature and the trace id; the trace shows proxy → av-scanner with the verdict', async () => {
    const blocked = await curl('http://allowed.test/av/eicar.com', '-x', PROXY);
    assert.equal(blocked.status, 403, blocked.stderr);
    assert.match(blocked.body, new RegExp(`Signature: ${EICAR_SIGNATURE.replaceAll('.', '\\.')}`));
    assert.match(blocked.body, /Decided by: antivirus/);
    assert.ok(blocked.traceId && blocked.body.includes(`Trace ID: ${blocked.traceId}`));
    assert.ok(!blocked.body.includes('EICAR-STANDARD-ANTIVIRUS-TEST-FILE'));

    const spans = await traceOf(blocked.traceId ?? '', (all) =>
      all.some((s) => s.name === 'av-scanner.scan'),
    );
    const server = spans.find((s) => s.kind === 'SERVER');
    const proxyScan = spans.find((s) => s.name === 'av.scan');
    const worker = spans.find((s) => s.name === 'av-scanner.scan');
    assert.equal(server?.attributes['moat.engine'], 'antivirus');
    assert.equal(server?.attributes['moat.signature'], EICAR_SIGNATURE);
    assert.equal(proxyScan?.parentSpanId, server?.spanId);
    assert.equal(worker?.serviceName, 'av-scanner');
    assert.equal(worker?.parentSpanId, proxyScan?.spanId, 'proxy → av-scanner in one trace');
    assert.equal(worker?.attributes['moat.av.result'], 'infected');
    assert.equal(worker?.attributes['moat.signature'], EICAR_SIGNATURE);
  });

  test('lab av - EICAR inside zip, nested zip, gzip and tar, intercepted (no proxy configured): blocked, naming the signature', async () => {
    for (const name of ['eicar.zip', 'eicar-nested.zip', 'eicar.com.gz', 'eicar.tar', 'eicar.tar.gz']) {
      const blocked = await curl(`http://allowed.test/av/${name}`);
      assert.equal(blocked.status, 403, `${name}: ${blocked.stderr}`);
      assert.match(blocked.body, /Decided by: antivirus/, name);
      assert.ok(blocked.body.includes(EICAR_SIGNATURE), name);
    }
  });

  test('lab av - EICAR over bumped HTTPS: the block page arrives over TLS, naming the signature', async () => {
    const blocked = await curl('https://allowed.test/av/eicar.zip', '--cacert', moatCa);
    assert.equal(blocked.status, 403, blocked.stderr);
    assert.ok(blocked.body.includes(EICAR_SIGNATURE));
  });

  test('lab av - a clean 10 MiB download arrives intact (sha256 equal at the client)', async () => {
    const out = join(dir, 'clean.bin');
    const reply = await curl('http://allowed.test/random/10485760?seed=lab', '-o', out);
    assert.equal(reply.status, 200, reply.stderr);
    const expected = /^x-content-sha256: ([0-9a-f]{64})/im.exec(reply.headers)?.[1];
    const got = await runCommand('sha256sum', [out]);
    assert.equal(got.stdout.split(' ')[0], expected);
  });

  test('lab av - moatctl status shows the worker, its signature version and age, and the queue depth', async () => {
    const status = await runCommand(MOATCTL, ['status']);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /antivirus workers \(1\)/);
    assert.match(status.stdout, /up\s+custom-[0-9a-f]{12}\s+\d+ min\s+passed/);
    assert.match(status.stdout, /scan queue: \d+ waiting, \d+ being scanned/);
  });
});
