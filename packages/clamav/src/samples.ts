/**
 * Files for testing a gateway's antivirus end to end: EICAR as is, and wrapped the ways malware
 * arrives (zip, a zip inside a zip, gzip, tar, tar.gz), plus the custom samples of the test database.
 * The lab's origin serves them; tests and benchmarks download them through the proxy.
 */
import { gzipSync } from 'node:zlib';
import { zipSync } from 'fflate';
import { pack } from 'tar-stream';
import { EICAR, TEST_SAMPLES } from './signatures.js';

export interface Sample {
  name: string;
  contentType: string;
  content: Buffer;
  /** The signature clamd reports with the test database. */
  signature: string;
}

function tarOf(name: string, content: Buffer): Promise<Buffer> {
  const tar = pack();
  const chunks: Buffer[] = [];
  tar.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((resolve, reject) => {
    tar.on('end', () => resolve(Buffer.concat(chunks)));
    tar.on('error', reject);
  });
  tar.entry({ name, mode: 0o644, mtime: new Date(0) }, content);
  tar.finalize();
  return done;
}

const zipOf = (name: string, content: Uint8Array) => Buffer.from(zipSync({ [name]: content }));

/**
 * A zip whose entry claims to be encrypted (the general-purpose flag's bit 0): what a password-
 * protected archive looks like to a scanner, which cannot see inside it.
 */
export function encryptedZip(): Buffer {
  const zip = Buffer.from(
    zipSync({ 'secret.txt': Buffer.from('nobody can read this without the password\n') }, { level: 0 }),
  );
  const local = zip.indexOf(Buffer.from([0x50, 0x4b, 0x03, 0x04]));
  const central = zip.indexOf(Buffer.from([0x50, 0x4b, 0x01, 0x02]));
  zip.writeUInt16LE(zip.readUInt16LE(local + 6) | 1, local + 6);
  zip.writeUInt16LE(zip.readUInt16LE(central + 8) | 1, central + 8);
  return zip;
}

/** Every infected sample, by file name. */
export async function infectedSamples(): Promise<Sample[]> {
  const eicarSignature = TEST_SAMPLES.eicar.signature;
  const zip = zipOf('eicar.com', EICAR);
  const tar = await tarOf('eicar.com', EICAR);
  const marker = Buffer.concat([
    Buffer.from('%PDF-1.4\n% a harmless document carrying the test marker\n'),
    TEST_SAMPLES.bodyMarker.marker,
    Buffer.from('\n%%EOF\n'),
  ]);
  return [
    { name: 'eicar.com', contentType: 'application/octet-stream', content: EICAR, signature: eicarSignature },
    { name: 'eicar.zip', contentType: 'application/zip', content: zip, signature: eicarSignature },
    {
      name: 'eicar-nested.zip',
      contentType: 'application/zip',
      content: zipOf('inner.zip', zip),
      signature: eicarSignature,
    },
    {
      name: 'eicar.com.gz',
      contentType: 'application/gzip',
      content: gzipSync(EICAR),
      signature: eicarSignature,
    },
    { name: 'eicar.tar', contentType: 'application/x-tar', content: tar, signature: eicarSignature },
    {
      name: 'eicar.tar.gz',
      contentType: 'application/gzip',
      content: gzipSync(tar),
      signature: eicarSignature,
    },
    {
      name: 'hash-sample.bin',
      contentType: 'application/octet-stream',
      content: TEST_SAMPLES.hashSample.content,
      signature: TEST_SAMPLES.hashSample.signature,
    },
    {
      name: 'marker.pdf',
      contentType: 'application/pdf',
      content: marker,
      signature: TEST_SAMPLES.bodyMarker.signature,
    },
  ];
}
