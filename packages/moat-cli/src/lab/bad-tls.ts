import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CryptoKey, type CryptoKeyPair, crypto, x509 } from '@moat/x509';
import { labPaths } from './state.js';

/**
 * The lab's bad-certificate servers, after Durumeric et al., "The Security Impact of HTTPS
 * Interception" (NDSS 2017): each one has exactly one defect a browser would refuse, so a
 * mediating proxy can be graded on refusing every one with the right reason. They live in moat-wan,
 * one address each on port 443 (interception works as for any site), and resolve in every lab
 * namespace as `<variant>.tls.test`. Everything else about them is sound: signed by the lab CA,
 * ECDSA P-256 or RSA-2048, TLS 1.2 or 1.3 with AEAD suites.
 */

/** How a server's TLS is set up, beyond its certificate. */
export type BadTlsProtocol = 'modern' | 'tls1.0-only' | 'tls1.1-only' | 'cbc-only';

export interface BadTlsVariant {
  name: string;
  /** What is wrong with it, in a browser's words. */
  defect: string;
  address: string;
  protocol: BadTlsProtocol;
}

export const BAD_TLS_VARIANTS: readonly BadTlsVariant[] = [
  { name: 'expired', defect: 'certificate expired', address: '192.0.2.21', protocol: 'modern' },
  { name: 'not-yet-valid', defect: 'certificate not yet valid', address: '192.0.2.22', protocol: 'modern' },
  { name: 'wrong-host', defect: 'certificate for another host', address: '192.0.2.23', protocol: 'modern' },
  { name: 'self-signed', defect: 'self-signed certificate', address: '192.0.2.24', protocol: 'modern' },
  {
    name: 'untrusted-root',
    defect: 'issued by an untrusted root',
    address: '192.0.2.25',
    protocol: 'modern',
  },
  { name: 'rsa1024', defect: 'RSA-1024 key', address: '192.0.2.26', protocol: 'modern' },
  { name: 'sha1', defect: 'SHA-1 signature', address: '192.0.2.27', protocol: 'modern' },
  { name: 'tls10', defect: 'TLS 1.0 only', address: '192.0.2.28', protocol: 'tls1.0-only' },
  { name: 'tls11', defect: 'TLS 1.1 only', address: '192.0.2.29', protocol: 'tls1.1-only' },
  { name: 'cbc-only', defect: 'CBC-only cipher suites', address: '192.0.2.30', protocol: 'cbc-only' },
];

export const badTlsHost = (variant: Pick<BadTlsVariant, 'name'>) => `${variant.name}.tls.test`;

export const badTlsFiles = (root: string | undefined, variant: Pick<BadTlsVariant, 'name'>) => {
  const dir = join(labPaths(root).tls, 'bad');
  return { dir, cert: join(dir, `${variant.name}.crt`), key: join(dir, `${variant.name}.key`) };
};

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const rsa = (bits: number, hash: 'SHA-256' | 'SHA-1') =>
  ({
    name: 'RSASSA-PKCS1-v1_5',
    modulusLength: bits,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash,
  }) as const;

interface LeafPlan {
  names: string[];
  notBefore: Date;
  notAfter: Date;
  keyAlgorithm: typeof EC | ReturnType<typeof rsa>;
  /** Signature hash (ECDSA with SHA-256 unless this says SHA-1). */
  hash: 'SHA-256' | 'SHA-1';
  issuer: 'lab-ca' | 'self' | 'untrusted-root';
}

function planFor(variant: BadTlsVariant, now: number): LeafPlan {
  const plan: LeafPlan = {
    names: [badTlsHost(variant)],
    notBefore: new Date(now - HOUR),
    notAfter: new Date(now + 30 * DAY),
    keyAlgorithm: EC,
    hash: 'SHA-256',
    issuer: 'lab-ca',
  };
  switch (variant.name) {
    case 'expired':
      return { ...plan, notBefore: new Date(now - 60 * DAY), notAfter: new Date(now - DAY) };
    case 'not-yet-valid':
      return { ...plan, notBefore: new Date(now + 30 * DAY), notAfter: new Date(now + 60 * DAY) };
    case 'wrong-host':
      return { ...plan, names: ['somewhere-else.test'] };
    case 'self-signed':
      return { ...plan, issuer: 'self' };
    case 'untrusted-root':
      return { ...plan, issuer: 'untrusted-root' };
    case 'rsa1024':
      return { ...plan, keyAlgorithm: rsa(1024, 'SHA-256') };
    case 'sha1':
      return { ...plan, hash: 'SHA-1' };
    default:
      return plan;
  }
}

async function importLabCa(
  root: string | undefined,
): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const paths = labPaths(root);
  const cert = new x509.X509Certificate(readFileSync(paths.caCert, 'utf8'));
  const pem = readFileSync(paths.caKey, 'utf8');
  const der = x509.PemConverter.decodeFirst(pem);
  const key = await crypto.subtle.importKey('pkcs8', der, EC, false, ['sign']);
  return { cert, key };
}

async function untrustedRoot(): Promise<{ cert: x509.X509Certificate; key: CryptoKey }> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=Untrusted lab root, O=Moat lab',
    notBefore: new Date(Date.now() - HOUR),
    notAfter: new Date(Date.now() + 30 * DAY),
    keys,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return { cert, key: keys.privateKey };
}

function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return bytes.toString('hex');
}

async function issue(
  plan: LeafPlan,
  labCa: { cert: x509.X509Certificate; key: CryptoKey },
  otherRoot: { cert: x509.X509Certificate; key: CryptoKey },
): Promise<{ certPem: string; keyPem: string }> {
  const keys = (await crypto.subtle.generateKey(plan.keyAlgorithm, true, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
  const name = `CN=${plan.names[0]}, O=Moat lab`;
  const extensions = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
      true,
    ),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(plan.names.map((value) => ({ type: 'dns' as const, value }))),
  ];
  const common = { serialNumber: serial(), notBefore: plan.notBefore, notAfter: plan.notAfter, extensions };
  let cert: x509.X509Certificate;
  if (plan.issuer === 'self') {
    cert = await x509.X509CertificateGenerator.createSelfSigned({
      ...common,
      name,
      keys,
      signingAlgorithm:
        plan.keyAlgorithm.name === 'ECDSA' ? { name: 'ECDSA', hash: plan.hash } : plan.keyAlgorithm,
    });
  } else {
    const ca = plan.issuer === 'lab-ca' ? labCa : otherRoot;
    cert = await x509.X509CertificateGenerator.create({
      ...common,
      subject: name,
      issuer: ca.cert.subject,
      publicKey: keys.publicKey,
      signingKey: ca.key,
      signingAlgorithm: { name: 'ECDSA', hash: plan.hash },
    });
  }
  const pkcs8 = await crypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { certPem: cert.toString('pem'), keyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/**
 * Issues every variant's certificate under the lab CA (after ensureLabCertificates), unless they
 * exist and were issued by the current CA. Returns whether it issued them.
 */
export async function ensureBadTlsCertificates(root?: string): Promise<'created' | 'kept'> {
  const paths = labPaths(root);
  const first = BAD_TLS_VARIANTS[0];
  const marker = join(badTlsFiles(root, { name: 'x' }).dir, 'issued-by-ca.pem');
  const caPem = readFileSync(paths.caCert, 'utf8');
  const complete = BAD_TLS_VARIANTS.every((v) => existsSync(badTlsFiles(root, v).cert));
  if (first && complete && existsSync(marker) && readFileSync(marker, 'utf8') === caPem) return 'kept';

  mkdirSync(badTlsFiles(root, { name: 'x' }).dir, { recursive: true, mode: 0o700 });
  const labCa = await importLabCa(root);
  const otherRoot = await untrustedRoot();
  const now = Date.now();
  for (const variant of BAD_TLS_VARIANTS) {
    const { certPem, keyPem } = await issue(planFor(variant, now), labCa, otherRoot);
    const files = badTlsFiles(root, variant);
    writeFileSync(files.cert, certPem);
    writeFileSync(files.key, keyPem, { mode: 0o600 });
  }
  writeFileSync(marker, caPem);
  return 'created';
}
