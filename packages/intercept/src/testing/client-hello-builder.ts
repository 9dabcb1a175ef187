/**
 * Builds ClientHellos byte by byte, independently of the parser, for the cases real
 * clients never produce: huge hellos, odd record splits, broken extensions.
 */

export interface HelloSpec {
  sni?: string;
  alpn?: string[];
  /** supported_versions list; omitted when undefined. */
  versions?: number[];
  /** Bytes of a padding extension (type 21), to make big hellos. */
  padding?: number;
  /** Extra raw extensions [type, data], appended as given (duplicates allowed, for negative tests). */
  extraExtensions?: [number, Buffer][];
  /** false: end the hello after compression_methods, with no extensions block at all. */
  withExtensions?: boolean;
}

const u8 = (n: number) => Buffer.from([n]);
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u24 = (n: number) => Buffer.from([n >> 16, (n >> 8) & 0xff, n & 0xff]);
const vec8 = (data: Buffer) => Buffer.concat([u8(data.length), data]);
const vec16 = (data: Buffer) => Buffer.concat([u16(data.length), data]);

export function extension(type: number, data: Buffer): Buffer {
  return Buffer.concat([u16(type), vec16(data)]);
}

export function serverNameExtension(...names: [number, string][]): Buffer {
  const list = Buffer.concat(
    names.map(([type, name]) => Buffer.concat([u8(type), vec16(Buffer.from(name))])),
  );
  return vec16(list);
}

/** The ClientHello handshake message (type 1, 24-bit length, body). */
export function clientHelloMessage(spec: HelloSpec = {}): Buffer {
  const extensions: Buffer[] = [];
  if (spec.sni !== undefined) extensions.push(extension(0, serverNameExtension([0, spec.sni])));
  if (spec.alpn)
    extensions.push(extension(16, vec16(Buffer.concat(spec.alpn.map((p) => vec8(Buffer.from(p)))))));
  if (spec.versions) extensions.push(extension(43, vec8(Buffer.concat(spec.versions.map(u16)))));
  if (spec.padding !== undefined) extensions.push(extension(21, Buffer.alloc(spec.padding)));
  for (const [type, data] of spec.extraExtensions ?? []) extensions.push(extension(type, data));
  const body = Buffer.concat([
    u16(0x0303),
    Buffer.alloc(32, 7), // random
    vec8(Buffer.alloc(32, 1)), // session_id
    vec16(Buffer.concat([u16(0x1301), u16(0xc02f)])), // cipher_suites
    vec8(Buffer.from([0])), // compression_methods: null
    ...(spec.withExtensions === false ? [] : [vec16(Buffer.concat(extensions))]),
  ]);
  return Buffer.concat([u8(1), u24(body.length), body]);
}

/** Wraps a handshake message in handshake records of at most `fragment` bytes each. */
export function frame(message: Buffer, fragment = 16_384, recordVersion = 0x0301): Buffer {
  const records: Buffer[] = [];
  for (let offset = 0; offset < message.length; offset += fragment) {
    const part = message.subarray(offset, offset + fragment);
    records.push(Buffer.concat([u8(22), u16(recordVersion), u16(part.length), part]));
  }
  return Buffer.concat(records);
}

/** The handshake bytes carried by a run of records (the inverse of `frame`, for re-framing captures). */
export function unframe(records: Buffer): Buffer {
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 5 <= records.length; ) {
    const length = records.readUInt16BE(offset + 3);
    parts.push(records.subarray(offset + 5, offset + 5 + length));
    offset += 5 + length;
  }
  return Buffer.concat(parts);
}
