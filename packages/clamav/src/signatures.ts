/**
 * The project's own signature database, for tests and the lab (offline there is no ClamAV database):
 * EICAR as an MD5 and a SHA-256 hash signature and as a body signature (which also finds it inside
 * archives and compressed streams), plus custom hash and body signatures for samples of our own.
 * Production runs freshclam instead.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The EICAR anti-virus test file (68 bytes): harmless, and every scanner detects it. */
export const EICAR = Buffer.from(
  'X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*',
  'latin1',
);

/** Samples only the generated database knows, with the names clamd reports for them. */
export const TEST_SAMPLES = {
  eicar: { content: EICAR, signature: 'Moat.Test.EICAR-Body.UNOFFICIAL' },
  /** Matched by its SHA-256 hash. */
  hashSample: {
    content: Buffer.from('Moat test sample: matched by its SHA-256 hash, nothing else.\n'),
    signature: 'Moat.Test.Hash-Sample.UNOFFICIAL',
  },
  /** Matched by a body signature: the marker anywhere in a file, also inside archives. */
  bodyMarker: {
    marker: Buffer.from('MOAT-TEST-MALWARE-BODY-MARKER-7f3c'),
    signature: 'Moat.Test.Body-Marker.UNOFFICIAL',
  },
} as const;

const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** The name clamd reports, without the suffix it adds to signatures outside the official database. */
const bare = (name: string) => name.replace(/\.UNOFFICIAL$/, '');

/** The files of the test database, name → content (clamd's .hdb, .hsb and .ndb formats). */
export function testSignatureFiles(): Record<string, string> {
  const { eicar, hashSample, bodyMarker } = TEST_SAMPLES;
  return {
    'moat-test.hdb': `${md5(eicar.content)}:${eicar.content.length}:${bare(eicar.signature)}\n`,
    'moat-test.hsb':
      `${sha256(eicar.content)}:${eicar.content.length}:Moat.Test.EICAR-SHA256\n` +
      `${sha256(hashSample.content)}:${hashSample.content.length}:${bare(hashSample.signature)}\n`,
    'moat-test.ndb':
      `Moat.Test.EICAR-Body:0:*:${eicar.content.toString('hex')}\n` +
      `${bare(bodyMarker.signature)}:0:*:${bodyMarker.marker.toString('hex')}\n`,
  };
}

/** Writes the test database into `dir` (created when missing); returns the paths written. */
export function writeTestSignatures(dir: string): string[] {
  mkdirSync(dir, { recursive: true });
  return Object.entries(testSignatureFiles()).map(([name, content]) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  });
}
