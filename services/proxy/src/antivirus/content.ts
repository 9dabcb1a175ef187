/**
 * What the scanner must see of a body: clamd unpacks gzip itself, but not brotli, zstd or a raw
 * zlib stream, and a client decodes all of them. A body in such an encoding is decoded here, with the
 * decoded size capped (a small compressed body can expand enormously), and the decoded bytes are what
 * gets scanned; the client still receives the body exactly as the server sent it.
 */
import { brotliDecompress, constants, gunzip, inflate, inflateRaw, zstdDecompress } from 'node:zlib';

export class UndecodableBodyError extends Error {
  override name = 'UndecodableBodyError';
}

export class DecodedTooLargeError extends Error {
  override name = 'DecodedTooLargeError';
}

type Decoder = (
  input: Buffer,
  opts: { maxOutputLength: number; finishFlush?: number },
  cb: (err: Error | null, out: Buffer) => void,
) => void;

/**
 * Each coding's decoder, and the flush mode that decodes a stream's first bytes only (what is there
 * is decoded, the missing rest is no error).
 */
const DECODERS: Record<string, { decode: Decoder; partialFlush: number }> = {
  gzip: { decode: gunzip, partialFlush: constants.Z_SYNC_FLUSH },
  br: { decode: brotliDecompress, partialFlush: constants.BROTLI_OPERATION_FLUSH },
  zstd: { decode: zstdDecompress as unknown as Decoder, partialFlush: constants.ZSTD_e_flush },
  deflate: {
    decode: (input, opts, cb) =>
      // "deflate" is zlib-wrapped by the RFC, raw in some servers: try both
      inflate(input, opts, (err, out) =>
        err && !(err instanceof RangeError) ? inflateRaw(input, opts, cb) : cb(err, out),
      ),
    partialFlush: constants.Z_SYNC_FLUSH,
  },
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

/** Undoes `codings` (from the last applied); `partial` decodes a stream's first bytes only. */
async function decode(bytes: Buffer, codings: string[], maxOutputLength: number, partial: boolean) {
  for (const coding of [...codings].reverse()) {
    const decoder = DECODERS[coding];
    if (!decoder) throw new UndecodableBodyError(`the content encoding "${coding}" cannot be scanned`);
    const opts = { maxOutputLength, ...(partial ? { finishFlush: decoder.partialFlush } : {}) };
    bytes = await new Promise<Buffer>((resolve, reject) =>
      decoder.decode(bytes, opts, (err, out) => {
        if (!err) return resolve(out);
        if (err instanceof RangeError || (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
          return reject(new DecodedTooLargeError(`decoded, the body exceeds ${maxOutputLength} bytes`));
        reject(new UndecodableBodyError(`the ${coding}-encoded body is corrupt: ${err.message}`));
      }),
    );
  }
  return bytes;
}

/**
 * The first bytes of a body as the client sees them once decoded, for telling its type (a zip sent
 * gzip-encoded is a zip, not "a gzip file"); undefined when they cannot be decoded (an unknown or
 * broken coding, or a head that expands past `maxBytes`).
 */
export async function decodedHead(
  head: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): Promise<Buffer | undefined> {
  try {
    return await decode(head, codingsOf(contentEncoding), maxBytes, true);
  } catch (err) {
    if (err instanceof UndecodableBodyError || err instanceof DecodedTooLargeError) return undefined;
    throw err;
  }
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
  return decode(body, codings, maxDecodedBytes, false);
}
