import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../run.js';
import { labPaths } from './state.js';
import { LAB_ADDRESSES, LAB_HOSTNAMES } from './topology.js';

/**
 * The lab's own PKI, made with the openssl CLI at `lab up`: a self-signed "Moat lab CA"
 * and one leaf for the origin covering every LAB_HOSTNAMES entry and the origin's
 * addresses. Tests trust the CA (`LAB_CA_CERT`) and so get fully validated HTTPS to
 * the origin. It lives in /run/moat-lab/tls and dies with the lab.
 */

const DAYS = '30';
const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** The subjectAltName the origin certificate must carry; a change (new lab names) re-issues it. */
export function originSubjectAltName(): string {
  const a = LAB_ADDRESSES;
  return [
    ...LAB_HOSTNAMES.map((name) => `DNS:${name}`),
    ...[a.origin, a.origin6, a.wanGw].map((ip) => `IP:${ip}`),
  ].join(',');
}

/** Creates the CA and origin certificate unless current ones exist. Returns what it made. */
export async function ensureLabCertificates(root?: string): Promise<'created' | 'reissued' | 'kept'> {
  const paths = labPaths(root);
  const sanFile = join(paths.tls, 'origin.san');
  const san = originSubjectAltName();
  const haveCa = existsSync(paths.caCert) && existsSync(paths.caKey);
  if (haveCa && existsSync(paths.originCert) && existsSync(paths.originKey) && readText(sanFile) === san)
    return 'kept';

  if (!haveCa) {
    await openssl([
      'req',
      '-x509',
      ...EC_KEY,
      '-keyout',
      paths.caKey,
      '-out',
      paths.caCert,
      '-days',
      DAYS,
      '-subj',
      '/O=Moat lab/CN=Moat lab CA',
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
    ]);
  }
  const csr = join(paths.tls, 'origin.csr');
  const extensions = join(paths.tls, 'origin.ext');
  writeFileSync(
    extensions,
    [
      `subjectAltName=${san}`,
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      '',
    ].join('\n'),
  );
  await openssl([
    'req',
    '-new',
    ...EC_KEY,
    '-keyout',
    paths.originKey,
    '-out',
    csr,
    '-subj',
    '/O=Moat lab/CN=origin.test',
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    paths.caCert,
    '-CAkey',
    paths.caKey,
    '-set_serial',
    randomSerial(),
    '-days',
    DAYS,
    '-extfile',
    extensions,
    '-out',
    paths.originCert,
  ]);
  for (const key of [paths.caKey, paths.originKey]) chmodSync(key, 0o600);
  rmSync(csr, { force: true });
  writeFileSync(sanFile, san);
  return haveCa ? 'reissued' : 'created';
}

async function openssl(args: string[]): Promise<void> {
  await run('openssl', args, { timeoutMs: 30_000 });
}

/** A random positive 64-bit serial: re-issued certificates never share one (clients may cache by serial). */
function randomSerial(): string {
  const bytes = randomBytes(8);
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x10;
  return `0x${bytes.toString('hex')}`;
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
