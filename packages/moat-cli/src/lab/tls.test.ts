import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { findOnPath } from '../run.js';
import { createOriginTlsServer } from './origin.js';
import { ensureStateDirs, labPaths } from './state.js';
import { ensureLabCertificates } from './tls.js';
import { LAB_HOSTNAMES } from './topology.js';

const skip = findOnPath('openssl') ? undefined : 'openssl is not installed';
const root = mkdtempSync(join(tmpdir(), 'moat-lab-tls-'));
const paths = labPaths(root);

before(() => ensureStateDirs(root));
after(() => rmSync(root, { recursive: true, force: true }));

test('tls - issues a lab CA and an origin certificate for every lab name, once', { skip }, async () => {
  assert.equal(await ensureLabCertificates(root), 'created');
  const ca = new X509Certificate(readFileSync(paths.caCert));
  const leaf = new X509Certificate(readFileSync(paths.originCert));
  assert.equal(ca.ca, true);
  assert.equal(leaf.ca, false);
  assert.equal(leaf.verify(ca.publicKey), true, 'signed by the lab CA');
  assert.ok(leaf.checkIssued(ca));
  for (const name of LAB_HOSTNAMES) assert.equal(leaf.checkHost(name), name);
  assert.equal(leaf.checkIP('192.0.2.10'), '192.0.2.10');
  assert.equal(leaf.checkHost('not-a-lab-name.test'), undefined);
  assert.equal(statSync(paths.caKey).mode & 0o077, 0, 'the CA key is private');

  const before = leaf.fingerprint256;
  assert.equal(await ensureLabCertificates(root), 'kept');
  assert.equal(new X509Certificate(readFileSync(paths.originCert)).fingerprint256, before);
});

test('tls - the origin serves its routes over HTTPS and /echo reports the TLS server name', {
  skip,
}, async () => {
  await ensureLabCertificates(root);
  const server = createOriginTlsServer({
    cert: readFileSync(paths.originCert),
    key: readFileSync(paths.originKey),
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const body = await new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          path: '/echo',
          servername: 'poker.test',
          headers: { host: 'poker.test' },
          ca: readFileSync(paths.caCert),
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            text += chunk;
          });
          res.on('end', () => resolve(text));
        },
      );
      req.on('error', reject);
      req.end();
    });
    const echo = JSON.parse(body) as {
      tls: { servername: string; protocol: string; alpnProtocol: string | null };
    };
    assert.equal(echo.tls.servername, 'poker.test');
    assert.equal(echo.tls.protocol, 'TLSv1.3');
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
