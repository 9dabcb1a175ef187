/**
 * A small private PKI for Moat's own service-to-service TLS (the proxy ↔ tls-mediation gRPC channel
 * in the lab, `moat dev` and tests): an ECDSA P-256 CA, and server or client certificates it signs.
 * Not the interception CA: that one lives in tls-mediation alone.
 */
import { randomBytes } from 'node:crypto';
import { type CryptoKey, type CryptoKeyPair, crypto, x509 } from './index.js';

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY = 86_400_000;

export interface IssuedPem {
  /** PEM certificate. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

export interface PrivateCa extends IssuedPem {
  /** Signs a server (`serverAuth`) or client (`clientAuth`) certificate for these names. */
  issue(request: {
    commonName: string;
    dnsNames?: readonly string[];
    ipAddresses?: readonly string[];
    usage: 'server' | 'client';
    days?: number;
  }): Promise<IssuedPem>;
}

/** A new private CA named `commonName`, valid for `days`. */
export async function createPrivateCa(commonName: string, days = 3650): Promise<PrivateCa> {
  const keys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
  const notBefore = new Date(Date.now() - 3_600_000);
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: `CN=${commonName}, O=Moat`,
    notBefore,
    notAfter: new Date(notBefore.getTime() + days * DAY),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  return {
    cert: caCert.toString('pem'),
    key: await pkcs8Pem(keys.privateKey),
    async issue({ commonName: name, dnsNames = [], ipAddresses = [], usage, days: leafDays = days }) {
      const leafKeys = (await crypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair;
      const cert = await x509.X509CertificateGenerator.create({
        serialNumber: serial(),
        subject: `CN=${name}, O=Moat`,
        issuer: caCert.subject,
        notBefore,
        notAfter: new Date(notBefore.getTime() + leafDays * DAY),
        publicKey: leafKeys.publicKey,
        signingKey: keys.privateKey,
        signingAlgorithm: SIGNING,
        extensions: [
          new x509.BasicConstraintsExtension(false, undefined, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
          new x509.ExtendedKeyUsageExtension([
            usage === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
          ]),
          ...(dnsNames.length + ipAddresses.length > 0
            ? [
                new x509.SubjectAlternativeNameExtension([
                  ...dnsNames.map((value) => ({ type: 'dns' as const, value })),
                  ...ipAddresses.map((value) => ({ type: 'ip' as const, value })),
                ]),
              ]
            : []),
        ],
      });
      return { cert: cert.toString('pem'), key: await pkcs8Pem(leafKeys.privateKey) };
    },
  };
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await crypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A positive 64-bit serial (RFC 5280: positive, at most 20 octets). */
function serial(): string {
  const bytes = randomBytes(8);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return bytes.toString('hex');
}
