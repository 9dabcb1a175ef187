/**
 * The interception CA and the leaves it signs, checked with Node's own X.509 parser and with
 * `openssl verify` (a real, independent verifier).
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { runCommand } from '@moat/testkit';
import { CaError, loadOrCreateCa } from './ca.js';
import { issueLeaf, LeafRequestError } from './issuer.js';

describe('interception CA', () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-tls-ca-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('ca - generated on first start, private to this service, and the same CA on the next start', async () => {
    const first = await loadOrCreateCa({ dir: join(dir, 'data') });
    assert.equal(first.origin, 'generated');
    assert.equal(statSync(join(dir, 'data', 'ca.key')).mode & 0o777, 0o600, 'the key file is private');
    const cert = new X509Certificate(first.certificatePem);
    assert.equal(cert.ca, true);
    assert.match(cert.subject, /CN=Moat interception CA/);
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    assert.equal(first.signingKey.extractable, false, 'the loaded key cannot be exported');

    const again = await loadOrCreateCa({ dir: join(dir, 'data') });
    assert.equal(again.origin, 'loaded');
    assert.equal(again.certificatePem, first.certificatePem);
    assert.deepEqual(again.cacheSecret, first.cacheSecret, 'the cache key follows the CA');
  });

  test('ca - an imported CA is used as given; a wrong key, a non-CA or half a pair is refused with what to fix', async () => {
    const source = join(dir, 'data');
    const imported = await loadOrCreateCa({
      certFile: join(source, 'ca.crt'),
      keyFile: join(source, 'ca.key'),
    });
    assert.equal(imported.origin, 'imported');

    const other = await loadOrCreateCa({ dir: join(dir, 'other') });
    await assert.rejects(
      loadOrCreateCa({ certFile: join(source, 'ca.crt'), keyFile: join(dir, 'other', 'ca.key') }),
      (err: unknown) =>
        err instanceof CaError && /is not the private key of the certificate/.test(err.message),
    );
    const leaf = await issueLeaf(other, { sni: 'www.example.test' }, 24);
    const leafFile = join(dir, 'leaf.crt');
    writeFileSync(leafFile, leaf.certificatePem);
    writeFileSync(join(dir, 'leaf.key'), leaf.privateKeyPem);
    await assert.rejects(
      loadOrCreateCa({ certFile: leafFile, keyFile: join(dir, 'leaf.key') }),
      (err: unknown) => err instanceof CaError && /is not a CA certificate/.test(err.message),
    );
    rmSync(join(dir, 'other', 'ca.crt'));
    await assert.rejects(
      loadOrCreateCa({ dir: join(dir, 'other') }),
      (err: unknown) => err instanceof CaError && /only half a CA/.test(err.message),
    );
    await assert.rejects(
      loadOrCreateCa({ certFile: join(dir, 'missing.crt'), keyFile: join(dir, 'missing.key') }),
      (err: unknown) => err instanceof CaError && /cannot read the CA certificate .*ENOENT/.test(err.message),
    );
  });

  test('leaf - ECDSA P-256, short-lived, for the SNI and the upstream names, and verified by openssl against the CA', async () => {
    const ca = await loadOrCreateCa({ dir: join(dir, 'data') });
    const leaf = await issueLeaf(
      ca,
      {
        sni: 'www.example.test',
        dnsNames: ['example.test', 'WWW.example.test', '*.cdn.example.test'],
        ipAddresses: ['192.0.2.10'],
      },
      24,
    );
    const cert = new X509Certificate(leaf.certificatePem);
    assert.equal(cert.ca, false);
    assert.equal(cert.subject, 'CN=www.example.test');
    assert.equal(
      cert.subjectAltName,
      'DNS:www.example.test, DNS:example.test, DNS:*.cdn.example.test, IP Address:192.0.2.10',
    );
    assert.equal(cert.checkHost('www.example.test'), 'www.example.test');
    assert.equal(cert.checkHost('img.cdn.example.test'), '*.cdn.example.test', 'the wildcard matches');
    assert.equal(cert.checkIP('192.0.2.10'), '192.0.2.10');
    assert.equal(cert.checkHost('other.test'), undefined);
    assert.ok(cert.checkIssued(new X509Certificate(ca.certificatePem)));
    assert.ok(cert.verify(new X509Certificate(ca.certificatePem).publicKey), 'signed by the CA');
    assert.equal(cert.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const lifetimeHours = (Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / 3_600_000;
    assert.ok(lifetimeHours <= 25, `valid for ${lifetimeHours} h`);
    assert.deepEqual(cert.keyUsage, ['1.3.6.1.5.5.7.3.1'], 'serverAuth only');

    writeFileSync(join(dir, 'www.crt'), leaf.certificatePem);
    const verified = await runCommand('openssl', [
      'verify',
      '-CAfile',
      join(dir, 'data', 'ca.crt'),
      '-purpose',
      'sslserver',
      '-verify_hostname',
      'www.example.test',
      join(dir, 'www.crt'),
    ]);
    assert.equal(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(readFileSync(join(dir, 'data', 'ca.crt'), 'utf8'), /BEGIN CERTIFICATE/);
  });

  test('leaf - names that are not DNS names or addresses are refused, naming them', async () => {
    const ca = await loadOrCreateCa({ dir: join(dir, 'data') });
    for (const [request, pattern] of [
      [{ sni: '' }, /no SNI/],
      [{ sni: 'bad name.test' }, /SNI "bad name\.test" is not a DNS name/],
      [{ sni: 'ok.test', dnsNames: ['evil\u0000.test'] }, /DNS name .* is not a DNS name/],
      [{ sni: 'ok.test', ipAddresses: ['300.1.1.1'] }, /IP address "300\.1\.1\.1" is not one/],
    ] as const) {
      await assert.rejects(
        issueLeaf(ca, request, 24),
        (err: unknown) => err instanceof LeafRequestError && pattern.test(err.message),
      );
    }
  });
});
