/**
 * The interception CA: generated on first start into a directory only this service reads, or
 * imported (in Kubernetes, from a Secret mounted as files). Its private key is a non-extractable
 * WebCrypto key once loaded; the PEM on disk is mode 0600 and never served.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CryptoKey, type CryptoKeyPair, crypto, x509 } from '@moat/x509';

export const EC_P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface InterceptionCa {
  certificate: x509.X509Certificate;
  /** PEM of the certificate: what clients install. */
  certificatePem: string;
  /** Signs leaves; cannot be exported. */
  signingKey: CryptoKey;
  /** Secret derived from the private key, for encrypting cached leaf keys (see leaf-cache.ts). */
  cacheSecret: Uint8Array;
  /** `generated` on this start, `loaded` from the data directory, `imported` from given files. */
  origin: 'generated' | 'loaded' | 'imported';
}

export type CaSource = { dir: string; subject?: string } | { certFile: string; keyFile: string };

/** The CA cannot be used; the message says what to fix. */
export class CaError extends Error {
  override name = 'CaError';
}

const CA_VALIDITY_YEARS = 10;

export async function loadOrCreateCa(source: CaSource): Promise<InterceptionCa> {
  if ('certFile' in source) return importCa(source.certFile, source.keyFile, 'imported');
  mkdirSync(source.dir, { recursive: true, mode: 0o700 });
  const certFile = join(source.dir, 'ca.crt');
  const keyFile = join(source.dir, 'ca.key');
  if (existsSync(certFile) && existsSync(keyFile)) return importCa(certFile, keyFile, 'loaded');
  if (existsSync(certFile) || existsSync(keyFile)) {
    throw new CaError(
      `${source.dir} holds only half a CA (ca.crt and ca.key go together): restore the missing file or remove both to generate a new CA`,
    );
  }
  return generateCa(certFile, keyFile, source.subject ?? 'CN=Moat interception CA, O=Moat');
}

async function generateCa(certFile: string, keyFile: string, subject: string): Promise<InterceptionCa> {
  const keys = (await crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = new Date();
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(now.getUTCFullYear() + CA_VALIDITY_YEARS);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subject,
    notBefore: new Date(now.getTime() - 60 * 60 * 1000),
    notAfter,
    keys,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  // the key first, private from the start; the certificate last marks the pair complete
  writeFileSync(keyFile, toPem(pkcs8, 'PRIVATE KEY'), { mode: 0o600 });
  writeFileSync(certFile, certificate.toString('pem'), { mode: 0o644 });
  return importCa(certFile, keyFile, 'generated');
}

async function importCa(
  certFile: string,
  keyFile: string,
  origin: InterceptionCa['origin'],
): Promise<InterceptionCa> {
  const certificatePem = read(certFile, 'CA certificate');
  const keyPem = read(keyFile, 'CA private key');
  if ((statSync(keyFile).mode & 0o077) !== 0 && origin !== 'imported') chmodSync(keyFile, 0o600);
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(certificatePem);
  } catch (err) {
    throw new CaError(`${certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  const usage = certificate.getExtension(x509.KeyUsagesExtension);
  if (!constraints?.ca || (usage && (usage.usages & x509.KeyUsageFlags.keyCertSign) === 0)) {
    throw new CaError(
      `${certFile} is not a CA certificate (it needs basicConstraints CA:TRUE and keyCertSign)`,
    );
  }
  if (certificate.notAfter.getTime() < Date.now()) {
    throw new CaError(
      `the CA in ${certFile} expired on ${certificate.notAfter.toISOString()}: import or generate a new one`,
    );
  }
  const pkcs8 = fromPem(keyPem, keyFile);
  const algorithm = certificate.publicKey.algorithm as { name: string; namedCurve: string };
  if (algorithm.name !== 'ECDSA') {
    throw new CaError(`${certFile}: Moat's CA key must be ECDSA (P-256 or P-384), not ${algorithm.name}`);
  }
  let signingKey: CryptoKey;
  try {
    signingKey = await crypto.subtle.importKey(
      'pkcs8',
      pkcs8,
      { name: 'ECDSA', namedCurve: algorithm.namedCurve },
      false,
      ['sign'],
    );
  } catch (err) {
    throw new CaError(
      `${keyFile} is not a PKCS#8 ${algorithm.namedCurve} private key: ${(err as Error).message}`,
    );
  }
  await assertKeyMatches(certificate, signingKey, certFile, keyFile);
  const cacheSecret = new Uint8Array(
    await crypto.subtle.deriveBits(
      {
        name: 'HKDF',
        hash: 'SHA-256',
        salt: new Uint8Array(0),
        info: new TextEncoder().encode('moat leaf cache v1'),
      },
      await crypto.subtle.importKey('raw', pkcs8, 'HKDF', false, ['deriveBits']),
      256,
    ),
  );
  return { certificate, certificatePem: certificate.toString('pem'), signingKey, cacheSecret, origin };
}

/** Signs a challenge with the key and verifies it with the certificate's public key. */
async function assertKeyMatches(
  cert: x509.X509Certificate,
  key: CryptoKey,
  certFile: string,
  keyFile: string,
) {
  const challenge = crypto.getRandomValues(new Uint8Array(32));
  const algorithm = { name: 'ECDSA', hash: 'SHA-256' };
  const signature = await crypto.subtle.sign(algorithm, key, challenge);
  const publicKey = await cert.publicKey.export(crypto);
  if (!(await crypto.subtle.verify(algorithm, publicKey, signature, challenge))) {
    throw new CaError(`${keyFile} is not the private key of the certificate in ${certFile}`);
  }
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new CaError(
      `cannot read the ${what} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // a positive INTEGER
  return Buffer.from(bytes).toString('hex');
}

export function toPem(der: Uint8Array, label: string): string {
  const base64 = Buffer.from(der)
    .toString('base64')
    .replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${base64.trimEnd()}\n-----END ${label}-----\n`;
}

function fromPem(pem: string, file: string): Uint8Array {
  const match = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(pem);
  if (!match?.[1])
    throw new CaError(
      `${file} holds no PKCS#8 "PRIVATE KEY" PEM block (convert it: openssl pkcs8 -topk8 -nocrypt)`,
    );
  return new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'));
}
