/**
 * What the scanner must see of a body: clamd unpacks gzip itself, but not brotli, zstd or a raw
 * zlib stream, and a client decodes all of them. A body in such an encoding is decoded here, with the
 * decoded size capped (a small compressed body can expand enormously), and the decoded bytes are what
 * gets scanned; the client still receives the body exactly as the server sent it.
 */
import {
  brotliDecompress,
  brotliDecompressSync,
  constants,
  gunzip,
  gunzipSync,
  inflate,
  inflateRaw,
  inflateRawSync,
  inflateSync,
  zstdDecompress,
  zstdDecompressSync,
} from 'node:zlib';

export class UndecodableBodyError extends Error {
  override name = 'UndecodableBodyError';
}

export class DecodedTooLargeError extends Error {
  override name = 'DecodedTooLargeError';
}

type Decoder = (
  input: Buffer,
  opts: { maxOutputLength: number },
  cb: (err: Error | null, out: Buffer) => void,
) => void;

const DECODERS: Record<string, Decoder> = {
  gzip: gunzip,
  br: brotliDecompress,
  zstd: zstdDecompress as unknown as Decoder,
  deflate: (input, opts, cb) =>
    // "deflate" is zlib-wrapped by the RFC, raw in some servers: try both
    inflate(input, opts, (err, out) =>
      err && !(err instanceof RangeError) ? inflateRaw(input, opts, cb) : cb(err, out),
    ),
};

/** The listed content codings, in the order they were applied, without identity. */
function codingsOf(contentEncoding: string | undefined): string[] {
  return (contentEncoding ?? '')
    .toLowerCase()
    .split(',')
    .map((c) => c.trim())
    .filter((c) => c && c !== 'identity')
    .map((c) => (c === 'x-gzip' ? 'gzip' : c));
}

/** Decoders of a stream's first bytes only: what is there is decoded, the missing rest is no error. */
const HEAD_DECODERS: Record<string, (input: Buffer, maxOutputLength: number) => Buffer> = {
  gzip: (input, maxOutputLength) =>
    gunzipSync(input, { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength }),
  br: (input, maxOutputLength) =>
    brotliDecompressSync(input, { finishFlush: constants.BROTLI_OPERATION_FLUSH, maxOutputLength }),
  zstd: (input, maxOutputLength) =>
    zstdDecompressSync(input, { finishFlush: constants.ZSTD_e_flush, maxOutputLength }),
  deflate: (input, maxOutputLength) => {
    const opts = { finishFlush: constants.Z_SYNC_FLUSH, maxOutputLength };
    try {
      return inflateSync(input, opts);
    } catch {
      return inflateRawSync(input, opts);
    }
  },
};

/**
 * The first bytes of a body as the client sees them once decoded, for telling its type (a zip sent
 * gzip-encoded is a zip, not "a gzip file"); undefined when they cannot be decoded (an unknown or
 * broken coding, or a head that expands past `maxBytes`).
 */
export function decodedHead(
  head: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): Buffer | undefined {
  let bytes = head;
  for (const coding of codingsOf(contentEncoding).reverse()) {
    const decode = HEAD_DECODERS[coding];
    if (!decode) return undefined;
    try {
      bytes = decode(bytes, maxBytes);
    } catch {
      return undefined;
    }
  }
  return bytes;
}

/** The bytes to scan for a body sent with `contentEncoding`; throws for unknown or broken encodings. */
export async function scannableBytes(
  body: Buffer,
  contentEncoding: string | undefined,
  maxDecodedBytes: number,
): Promise<Buffer> {
  const codings = codingsOf(contentEncoding);
  // clamd unpacks one gzip layer itself
  if (codings.length === 0 || (codings.length === 1 && codings[0] === 'gzip')) return body;
  let bytes = body;
  // codings are listed in the order they were applied: undo them from the last
  for (const coding of codings.reverse()) {
    const decode = DECODERS[coding];
    if (!decode) throw new UndecodableBodyError(`the content encoding "${coding}" cannot be scanned`);
    bytes = await new Promise<Buffer>((resolve, reject) =>
      decode(bytes, { maxOutputLength: maxDecodedBytes }, (err, out) => {
        if (!err) return resolve(out);
        if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
          return reject(new DecodedTooLargeError(`decoded, the body exceeds ${maxDecodedBytes} bytes`));
        reject(new UndecodableBodyError(`the ${coding}-encoded body is corrupt: ${err.message}`));
      }),
    );
  }
  return bytes;
}
