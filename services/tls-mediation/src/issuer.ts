/**
 * Mints the short-lived leaf certificates the proxy presents to clients when it bumps TLS: ECDSA
 * P-256, signed by the interception CA, naming what the upstream's own certificate names.
 */
import { isIP } from 'node:net';
import { type CryptoKeyPair, crypto, x509 } from '@moat/x509';
import { EC_P256, ECDSA_SHA256, type InterceptionCa, randomSerial, toPem } from './ca.js';

export interface LeafRequest {
  /** The name the client asked for (TLS SNI); the subject's common name and always a SAN. */
  sni: string;
  /** The upstream certificate's subject alternative names, copied. */
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
}

export interface Leaf {
  certificatePem: string;
  privateKeyPem: string;
  notBefore: Date;
  notAfter: Date;
  serial: string;
}

/** The request cannot become a certificate; the message says which name is wrong. */
export class LeafRequestError extends Error {
  override name = 'LeafRequestError';
}

const DNS_NAME = /^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** The request's names, checked and deduplicated: DNS names lower-cased, SNI first. */
export function leafNames(request: LeafRequest): { dns: string[]; ip: string[] } {
  const dns = new Set<string>();
  const ip = new Set<string>();
  const add = (name: string, from: string) => {
    const value = name.trim().toLowerCase();
    if (isIP(value)) ip.add(value);
    else if (value.length <= 253 && DNS_NAME.test(value)) dns.add(value);
    else throw new LeafRequestError(`${from} ${JSON.stringify(name)} is not a DNS name or IP address`);
  };
  if (!request.sni) throw new LeafRequestError('no SNI: a leaf needs the name the client asked for');
  add(request.sni, 'SNI');
  for (const name of request.dnsNames ?? []) add(name, 'DNS name');
  for (const address of request.ipAddresses ?? []) {
    if (!isIP(address)) throw new LeafRequestError(`IP address ${JSON.stringify(address)} is not one`);
    ip.add(address);
  }
  if (dns.size + ip.size > 100) throw new LeafRequestError('more than 100 names in one certificate');
  return { dns: [...dns], ip: [...ip] };
}

export async function issueLeaf(
  ca: InterceptionCa,
  request: LeafRequest,
  validityHours: number,
): Promise<Leaf> {
  const names = leafNames(request);
  const keys = (await crypto.subtle.generateKey(EC_P256, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  // a little backdating absorbs client clocks running behind
  const notBefore = new Date(now - 60 * 60 * 1000);
  const notAfter = new Date(Math.min(now + validityHours * 3600 * 1000, ca.certificate.notAfter.getTime()));
  const serial = randomSerial();
  const commonName = names.dns[0] ?? names.ip[0] ?? request.sni;
  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: [{ CN: [commonName] }],
    issuer: ca.certificate.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.signingKey,
    signingAlgorithm: ECDSA_SHA256,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension([
        ...names.dns.map((value) => ({ type: 'dns' as const, value })),
        ...names.ip.map((value) => ({ type: 'ip' as const, value })),
      ]),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.certificate.publicKey),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
  return {
    certificatePem: certificate.toString('pem'),
    privateKeyPem: toPem(pkcs8, 'PRIVATE KEY'),
    notBefore,
    notAfter,
    serial,
  };
}
