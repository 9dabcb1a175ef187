/**
 * A bounds-checked parser for the first flight of a TLS client: TLS records →
 * the ClientHello handshake message → the extensions a proxy routes on
 * (server_name, ALPN, supported_versions). Pure and synchronous; it never
 * throws, whatever the bytes, so it can look at untrusted input directly.
 */

export type TlsVersionName = 'SSLv3' | 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';

export interface ClientHello {
  status: 'complete';
  /** server_name (host_name), lower-cased, trailing dot removed. Absent when the client sent none (IP literals). */
  sni?: string;
  /** ALPN protocol ids in the client's order (e.g. ['h2', 'http/1.1']); absent without the extension. */
  alpn?: string[];
  /** The highest version offered: from supported_versions (GREASE ignored) when present, else legacy_version. */
  tlsVersion: TlsVersionName | 'unknown';
  /** ClientHello.legacy_version (0x0303 for TLS 1.2 and 1.3 clients). */
  legacyVersion: number;
  /** supported_versions without GREASE values, in the client's order; absent without the extension. */
  supportedVersions?: number[];
  cipherSuites: number[];
  /** Extension types in the order sent (GREASE included), e.g. for fingerprinting. */
  extensionTypes: number[];
  /** The client sent encrypted_client_hello: the SNI above is only the outer, public name. */
  encryptedClientHello: boolean;
  /** How many input bytes the TLS records that carried the ClientHello take. */
  recordBytes: number;
}

export type ClientHelloParse =
  | ClientHello
  /** A prefix of what may become a valid ClientHello: read until there are at least `needed` bytes. */
  | { status: 'incomplete'; needed: number }
  /** Not a TLS handshake at all (e.g. plain HTTP). */
  | { status: 'not-tls'; reason: string }
  /** TLS, but broken or beyond our limits. */
  | { status: 'malformed'; reason: string };

/** Largest TLSPlaintext fragment (RFC 8446 §5.1). */
export const MAX_RECORD_LENGTH = 16_384;
/** Largest ClientHello handshake message we accept; real ones are a few hundred bytes to ~2 KiB (PQ key shares). */
export const MAX_CLIENT_HELLO_LENGTH = 65_536;
/** Most records one ClientHello may span. Real clients use 1–5; the cap bounds the work a hostile one can cause. */
export const MAX_RECORDS = 1_024;

const CONTENT_HANDSHAKE = 22;
const HANDSHAKE_CLIENT_HELLO = 1;
const EXT_SERVER_NAME = 0;
const EXT_ALPN = 16;
const EXT_SUPPORTED_VERSIONS = 43;
const EXT_ENCRYPTED_CLIENT_HELLO = 0xfe0d;
const NAME_TYPE_HOST_NAME = 0;

const VERSION_NAMES: Record<number, TlsVersionName> = {
  768: 'SSLv3',
  769: 'TLSv1',
  770: 'TLSv1.1',
  771: 'TLSv1.2',
  772: 'TLSv1.3',
};

export function parseClientHello(input: Buffer): ClientHelloParse {
  try {
    if (input.length === 0) return incomplete(1);
    return parseRecords(input);
  } catch (error) {
    if (error instanceof Malformed) return { status: 'malformed', reason: error.message };
    // Unreachable by design (every read is bounds-checked); kept so the "never throws" promise holds.
    return { status: 'malformed', reason: `parser error: ${String(error)}` };
  }
}

/**
 * Walks the records, counting handshake bytes until the whole ClientHello message is there.
 * Nothing is copied or allocated per record: a client may split its hello into thousands of
 * tiny records (an old trick against SNI filters), and each read re-walks them.
 */
function parseRecords(input: Buffer): ClientHelloParse {
  const notTls = looksLikeTls(input);
  if (notTls) return { status: 'not-tls', reason: notTls };

  let gathered = 0;
  let messageLength = -1;
  for (let offset = 0, records = 1; ; records++) {
    if (offset + 5 > input.length) return incomplete(offset + 5);
    if (input[offset] !== CONTENT_HANDSHAKE)
      throw new Malformed(`record of content type ${input[offset]} before the ClientHello was complete`);
    if (input[offset + 1] !== 3) throw new Malformed('record version is not 3.x');
    if (records > MAX_RECORDS)
      throw new Malformed(`ClientHello spread over more than ${MAX_RECORDS} records`);
    const length = input.readUInt16BE(offset + 3);
    if (length === 0) throw new Malformed('empty handshake record');
    if (length > MAX_RECORD_LENGTH)
      throw new Malformed(`record of ${length} bytes exceeds ${MAX_RECORD_LENGTH}`);
    const end = offset + 5 + length;
    // Count what is there even of a partial record: an oversized or wrong message is refused without waiting.
    gathered += Math.min(end, input.length) - (offset + 5);

    if (messageLength < 0 && gathered >= 4) {
      const header = handshakeBytes(input, 4);
      if (header[0] !== HANDSHAKE_CLIENT_HELLO)
        throw new Malformed(`first handshake message has type ${header[0]}, not ClientHello`);
      messageLength = header.readUIntBE(1, 3);
      if (messageLength > MAX_CLIENT_HELLO_LENGTH)
        throw new Malformed(`ClientHello of ${messageLength} bytes exceeds ${MAX_CLIENT_HELLO_LENGTH}`);
    }
    if (end > input.length) return incomplete(messageLength < 0 ? input.length + 4 - gathered : end);
    if (messageLength >= 0 && gathered >= 4 + messageLength)
      return parseBody(handshakeBytes(input, 4 + messageLength).subarray(4), end);
    offset = end;
  }
}

const incomplete = (needed: number): ClientHelloParse => ({ status: 'incomplete', needed });

/** The first `n` handshake bytes across the (already checked) records at the start of `input`. */
function handshakeBytes(input: Buffer, n: number): Buffer {
  // The common case, a hello in one record, needs no copy.
  if (input.readUInt16BE(3) >= n) return input.subarray(5, 5 + n);
  const out = Buffer.allocUnsafe(n);
  for (let offset = 0, filled = 0; filled < n; offset += 5 + input.readUInt16BE(offset + 3)) {
    const start = offset + 5;
    const take = Math.min(input.readUInt16BE(offset + 3), n - filled, input.length - start);
    input.copy(out, filled, start, start + take);
    filled += take;
  }
  return out;
}

/** A reason when the first bytes rule out a TLS handshake record; undefined while they still may be one. */
function looksLikeTls(input: Buffer): string | undefined {
  if (input.length === 0) return undefined;
  if (input[0] !== CONTENT_HANDSHAKE) {
    // SSLv2-compatible hellos (high bit set) are not supported by any current server; treat them as foreign.
    return `first byte 0x${hex2(input[0] ?? 0)} is not a TLS handshake record`;
  }
  if (input.length >= 2 && input[1] !== 3) return `record version major ${input[1]} is not 3`;
  if (input.length >= 3 && (input[2] ?? 0) > 4) return `record version 3.${input[2]} is unknown`;
  return undefined;
}

function parseBody(body: Buffer, recordBytes: number): ClientHello {
  const r = new Reader(body);
  const legacyVersion = r.u16('legacy_version');
  r.skip(32, 'random');
  const sessionIdLength = r.u8('session_id length');
  if (sessionIdLength > 32) throw new Malformed('session_id longer than 32 bytes');
  r.skip(sessionIdLength, 'session_id');
  const suites = r.vector16('cipher_suites');
  if (suites.remaining === 0 || suites.remaining % 2 !== 0) throw new Malformed('bad cipher_suites length');
  const cipherSuites: number[] = [];
  while (suites.remaining > 0) cipherSuites.push(suites.u16('cipher suite'));
  const compression = r.vector8('compression_methods');
  if (compression.remaining === 0) throw new Malformed('no compression methods');

  const hello: ClientHello = {
    status: 'complete',
    tlsVersion: VERSION_NAMES[legacyVersion] ?? 'unknown',
    legacyVersion,
    cipherSuites,
    extensionTypes: [],
    encryptedClientHello: false,
    recordBytes,
  };
  // Before TLS 1.2 extensions were optional; a hello may end right after the compression methods.
  if (r.remaining === 0) return hello;
  const extensions = r.vector16('extensions');
  if (r.remaining !== 0) throw new Malformed('bytes after the extensions');
  const seen = new Set<number>();
  while (extensions.remaining > 0) {
    const type = extensions.u16('extension type');
    const data = extensions.vector16('extension data');
    if (seen.has(type)) throw new Malformed(`extension ${type} appears twice`);
    seen.add(type);
    hello.extensionTypes.push(type);
    if (type === EXT_SERVER_NAME) {
      const sni = parseServerName(data);
      if (sni !== undefined) hello.sni = sni;
    } else if (type === EXT_ALPN) {
      hello.alpn = parseAlpn(data);
    } else if (type === EXT_SUPPORTED_VERSIONS) {
      hello.supportedVersions = parseSupportedVersions(data);
      hello.tlsVersion = highestVersion(hello.supportedVersions);
    } else if (type === EXT_ENCRYPTED_CLIENT_HELLO) {
      hello.encryptedClientHello = true;
    }
  }
  return hello;
}

/** RFC 6066 §3: a list of (name_type, name); at most one host_name. */
function parseServerName(data: Reader): string | undefined {
  const list = data.vector16('server_name_list');
  if (data.remaining !== 0) throw new Malformed('bytes after server_name_list');
  if (list.remaining === 0) throw new Malformed('empty server_name_list');
  let hostName: string | undefined;
  while (list.remaining > 0) {
    const nameType = list.u8('name_type');
    const name = list.vector16('server name');
    if (nameType !== NAME_TYPE_HOST_NAME) continue;
    if (hostName !== undefined) throw new Malformed('more than one host_name');
    hostName = normaliseHostName(name.restText());
  }
  return hostName;
}

const HOST_LABEL = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;

/**
 * The name a proxy decides on must be an unambiguous DNS name: ASCII letters, digits, '-', '_'
 * (IDNs arrive as xn-- A-labels), no empty labels. Anything else is refused rather than passed on.
 */
function normaliseHostName(raw: string): string {
  if (raw.length === 0 || raw.length > 255) throw new Malformed('host_name length out of range');
  let name = raw.toLowerCase();
  if (name.endsWith('.')) name = name.slice(0, -1);
  const labels = name.split('.');
  if (!labels.every((label) => HOST_LABEL.test(label)))
    throw new Malformed('server_name is not a valid host name');
  return name;
}

function parseAlpn(data: Reader): string[] {
  const list = data.vector16('protocol_name_list');
  if (data.remaining !== 0) throw new Malformed('bytes after protocol_name_list');
  if (list.remaining === 0) throw new Malformed('empty protocol_name_list');
  const protocols: string[] = [];
  while (list.remaining > 0) {
    const protocol = list.vector8('protocol name');
    if (protocol.remaining === 0) throw new Malformed('empty ALPN protocol name');
    // Protocol ids are opaque bytes; latin1 text keeps them one character per byte.
    protocols.push(protocol.restText());
  }
  return protocols;
}

function parseSupportedVersions(data: Reader): number[] {
  const list = data.vector8('supported_versions');
  if (data.remaining !== 0) throw new Malformed('bytes after supported_versions');
  if (list.remaining === 0 || list.remaining % 2 !== 0) throw new Malformed('bad supported_versions length');
  const versions: number[] = [];
  while (list.remaining > 0) {
    const version = list.u16('version');
    if (!isGrease(version)) versions.push(version);
  }
  return versions;
}

function highestVersion(versions: readonly number[]): TlsVersionName | 'unknown' {
  const known = versions.filter((v) => VERSION_NAMES[v] !== undefined);
  return known.length === 0 ? 'unknown' : (VERSION_NAMES[Math.max(...known)] ?? 'unknown');
}

/** RFC 8701 GREASE values: 0x0a0a, 0x1a1a, … 0xfafa. */
const isGrease = (value: number) => (value & 0x0f0f) === 0x0a0a && value >> 8 === (value & 0xff);

const hex2 = (byte: number) => byte.toString(16).padStart(2, '0');

class Malformed extends Error {}

/**
 * A cursor over [offset, end) of a buffer; every read checks its bounds first and throws Malformed
 * if short. Sub-readers share the buffer (no subarray per vector: those cost more than the parsing).
 */
class Reader {
  constructor(
    private readonly buffer: Buffer,
    private offset = 0,
    private readonly end = buffer.length,
  ) {}

  get remaining(): number {
    return this.end - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.remaining < n) throw new Malformed(`truncated ${what}`);
  }

  u8(what: string): number {
    this.need(1, what);
    return this.buffer[this.offset++] ?? 0;
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.buffer.readUInt16BE(this.offset);
    this.offset += 2;
    return value;
  }

  skip(n: number, what: string): void {
    this.need(n, what);
    this.offset += n;
  }

  /** A sub-reader over the next n bytes. */
  take(n: number, what: string): Reader {
    this.need(n, what);
    const sub = new Reader(this.buffer, this.offset, this.offset + n);
    this.offset += n;
    return sub;
  }

  vector8(what: string): Reader {
    return this.take(this.u8(what), what);
  }

  vector16(what: string): Reader {
    return this.take(this.u16(what), what);
  }

  /** The rest as latin1 text (one character per byte). */
  restText(): string {
    const text = this.buffer.toString('latin1', this.offset, this.end);
    this.offset = this.end;
    return text;
  }
}
