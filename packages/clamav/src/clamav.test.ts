import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  announceBuildTime,
  ClamdClient,
  type ClamdError,
  EICAR,
  encryptedZip,
  infectedSamples,
  parseClamdAddress,
  parseScanReply,
  readSignatureDatabase,
  SignatureDatabaseError,
  writeTestSignatures,
} from './index.js';
import { startClamd, type TestClamd } from './testing.js';

test('clamav - addresses: unix paths and host:port, anything else refused with the accepted forms', () => {
  assert.deepEqual(parseClamdAddress('/run/clamav/clamd.ctl'), { path: '/run/clamav/clamd.ctl' });
  assert.deepEqual(parseClamdAddress('unix:/tmp/c.sock'), { path: '/tmp/c.sock' });
  assert.deepEqual(parseClamdAddress('127.0.0.1:3310'), { host: '127.0.0.1', port: 3310 });
  assert.deepEqual(parseClamdAddress('[::1]:3310'), { host: '::1', port: 3310 });
  for (const bad of ['clamd', '127.0.0.1', 'host:0', 'host:99999', ''])
    assert.throws(() => parseClamdAddress(bad), /unix socket path .* or host:port/);
});

test('clamav - replies are parsed strictly: only OK is clean', () => {
  assert.deepEqual(parseScanReply('stream: OK'), { status: 'clean' });
  assert.deepEqual(parseScanReply('stream: Win.Test.EICAR_HDB-1 FOUND'), {
    status: 'infected',
    signature: 'Win.Test.EICAR_HDB-1',
  });
  assert.throws(
    () => parseScanReply('INSTREAM size limit exceeded. ERROR'),
    (e: ClamdError) => e.kind === 'size-limit',
  );
  assert.throws(
    () => parseScanReply("stream: Can't allocate memory ERROR"),
    (e: ClamdError) => e.kind === 'clamd',
  );
  for (const odd of ['', 'OK', 'stream: ok', 'stream:  FOUND', 'UNKNOWN COMMAND'])
    assert.throws(
      () => parseScanReply(odd),
      (e: ClamdError) => e.kind === 'protocol',
      odd,
    );
});

test('clamav - a server that never answers is a timeout, a closed port is unreachable', async () => {
  const silent = createServer(() => undefined);
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const port = (silent.address() as { port: number }).port;
  const client = new ClamdClient({ host: '127.0.0.1', port }, { timeoutMs: 300 });
  await assert.rejects(client.scan(EICAR), (e: ClamdError) => e.kind === 'timeout');
  silent.close();
  const dir = mkdtempSync(join(tmpdir(), 'moat-clamav-'));
  await assert.rejects(
    new ClamdClient({ path: join(dir, 'none.sock') }).ping(),
    (e: ClamdError) => e.kind === 'unreachable',
  );
  rmSync(dir, { recursive: true });
});

test('clamav - the database version changes with any signature and is stable otherwise; a CVD header gives its version and build time', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-sigs-'));
  try {
    await assert.rejects(readSignatureDatabase(dir), SignatureDatabaseError);
    writeTestSignatures(dir);
    const first = await readSignatureDatabase(dir);
    assert.match(first.version, /^custom-[0-9a-f]{12}$/);
    utimesSync(join(dir, 'moat-test.hdb'), new Date(), new Date());
    assert.equal((await readSignatureDatabase(dir)).version, first.version, 'a touch is not a change');
    writeFileSync(join(dir, 'extra.hdb'), '0123456789abcdef0123456789abcdef:5:Extra.Sig\n');
    assert.notEqual((await readSignatureDatabase(dir)).version, first.version);
    const header = Buffer.alloc(512);
    header.write('ClamAV-VDB:03 Dec 2026 09-23 +0000:27412:2070000:90:0123:sig:builder:1796290000');
    writeFileSync(join(dir, 'daily.cvd'), header);
    const withCvd = await readSignatureDatabase(dir);
    assert.match(withCvd.version, /^daily-27412\.custom-[0-9a-f]{12}$/);
    assert.equal(withCvd.files.find((f) => f.name === 'daily.cvd')?.builtAt.getTime(), 1796290000 * 1000);
    // ordering across workers: the CVD's build time, not when this pod wrote its custom files
    assert.equal(announceBuildTime(withCvd).getTime(), 1796290000 * 1000);
    assert.equal(announceBuildTime(first).getTime(), first.builtAt.getTime(), 'plain files only: their time');
    writeFileSync(join(dir, 'daily.cvd'), 'not a database');
    await assert.rejects(readSignatureDatabase(dir), /bad header/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe('clamav against clamd', () => {
  let clamd: TestClamd;
  before(async () => {
    clamd = await startClamd({ streamMaxLength: 1024 * 1024 });
  });
  after(async () => {
    await clamd?.dispose();
  });

  test('clamav - the test database detects EICAR in every wrapper and the custom samples, by name', async () => {
    for (const sample of await infectedSamples()) {
      assert.deepEqual(
        await clamd.client.scan(sample.content),
        { status: 'infected', signature: sample.signature },
        sample.name,
      );
    }
  });

  test('clamav - an encrypted archive is not clean: clamd reports it (AlertEncrypted yes)', async () => {
    const outcome = await clamd.client.scan(encryptedZip());
    assert.equal(outcome.status, 'infected');
    assert.match((outcome as { signature: string }).signature, /^Heuristics\.Encrypted/);
  });

  test('clamav - clean content streamed from an iterable, and content over StreamMaxLength is an error, not clean', async () => {
    const chunks = (async function* () {
      for (let i = 0; i < 8; i++) yield Buffer.alloc(100_000, i);
    })();
    assert.deepEqual(await clamd.client.scan(chunks), { status: 'clean' });
    await assert.rejects(
      clamd.client.scan(Buffer.alloc(2 * 1024 * 1024, 1)),
      (e: ClamdError) => e.kind === 'size-limit',
    );
    assert.deepEqual(await clamd.client.scan(EICAR), {
      status: 'infected',
      signature: 'Moat.Test.EICAR-Body.UNOFFICIAL',
    });
  });

  test('clamav - a stopped clamd is unreachable; started again it scans (no client state to reset)', async () => {
    await clamd.stop();
    await assert.rejects(clamd.client.scan(EICAR), (e: ClamdError) => e.kind === 'unreachable');
    await clamd.start();
    assert.equal((await clamd.client.scan(EICAR)).status, 'infected');
  });
});
