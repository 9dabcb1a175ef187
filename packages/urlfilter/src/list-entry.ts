/**
 * Turns one list line (bytes) into a normalised entry: a domain for `domains` lists, host + path
 * for `urls` lists. Works on bytes so that millions of lines never become JS strings; IDNs and
 * IPv6 literals, which are rare, go through a string path.
 */
import { canonicalIpv6, normaliseHost } from './host.js';

/** The line is not a usable entry (counted as skipped). */
export const JUNK = -1;
/** The line needs the string path: non-ASCII (an IDN) or a ':' (IPv6). */
const NEEDS_TEXT = -2;

const DOT = 46;
const SLASH = 47;
const COLON = 58;
const HASH = 35;
const MAX_NAME = 253;
const MAX_LABEL = 63;
const HEX = '0123456789ABCDEF';

/** Whitespace that may surround an entry: space, tab, CR (CRLF files), vertical tab, form feed. */
export function isSpace(code: number): boolean {
  return code === 32 || (code >= 9 && code <= 13);
}

/**
 * The entry token of line[start, end): trimmed, with a trailing `# comment` allowed. Returns
 * [start, end) of the token, `undefined` for blank and comment lines, or JUNK when there is more
 * than one word.
 */
export function entryToken(
  line: Uint8Array,
  start: number,
  end: number,
): [number, number] | undefined | typeof JUNK {
  let from = start;
  let to = end;
  while (from < to && isSpace(line[from])) from++;
  while (to > from && isSpace(line[to - 1])) to--;
  if (from === to || line[from] === HASH) return undefined;
  let tokenEnd = from;
  while (tokenEnd < to && !isSpace(line[tokenEnd])) tokenEnd++;
  if (tokenEnd < to) {
    let rest = tokenEnd;
    while (isSpace(line[rest])) rest++;
    if (line[rest] !== HASH) return JUNK;
  }
  return [from, tokenEnd];
}

/**
 * Writes the normalised domain in src[start, end) to out[at...] and returns its length, or JUNK.
 * Lowercases, drops leading dots (Squid's `.example.com`) and trailing dots, checks the
 * characters (letters, digits, '-', '_') and label and name lengths.
 */
export function normaliseDomain(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at = 0,
): number {
  const length = normaliseAsciiDomain(src, start, end, out, at);
  if (length !== NEEDS_TEXT) return length;
  const text = normaliseHostText(
    Buffer.from(src.buffer, src.byteOffset + start, end - start).toString('utf8'),
  );
  if (text === undefined) return JUNK;
  const ascii = Buffer.from(text, 'latin1');
  if (at + ascii.length > out.length) return JUNK;
  out.set(ascii, at);
  return ascii.length;
}

/** String form for the rare IDN and IPv6 entries; undefined when the text is not a host. */
function normaliseHostText(text: string): string | undefined {
  if (text.includes(':')) return canonicalIpv6(text.replace(/^\[(.*)\]$/, '$1'));
  const host = normaliseHost(text.replace(/^\.+/, ''));
  if (host === '') return undefined;
  const bytes = Buffer.from(host, 'latin1');
  const scratch = new Uint8Array(bytes.length);
  const length = normaliseAsciiDomain(bytes, 0, bytes.length, scratch, 0);
  return length < 0 ? undefined : host;
}

function normaliseAsciiDomain(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
  at: number,
): number {
  let from = start;
  let to = end;
  while (from < to && src[from] === DOT) from++;
  while (to > from && src[to - 1] === DOT) to--;
  const length = to - from;
  if (length === 0 || length > MAX_NAME || at + length > out.length) return JUNK;
  let label = 0;
  for (let i = 0; i < length; i++) {
    let code = src[from + i];
    if (code === DOT) {
      if (label === 0) return JUNK;
      label = 0;
    } else {
      if (code >= 65 && code <= 90) code += 32;
      else if (code >= 128 || code === COLON || code === 91) return NEEDS_TEXT;
      else if (!((code >= 97 && code <= 122) || (code >= 48 && code <= 57) || code === 45 || code === 95)) {
        return JUNK;
      }
      if (++label > MAX_LABEL) return JUNK;
    }
    out[at + i] = code;
  }
  return length;
}

/** Length of a leading `http://` or `https://` (any case) in src[start, end), or 0. */
function schemeLength(src: Uint8Array, start: number, end: number): number {
  const text = Buffer.from(src.buffer, src.byteOffset + start, Math.min(8, end - start)).toString('latin1');
  const lower = text.toLowerCase();
  if (lower.startsWith('http://')) return 7;
  if (lower.startsWith('https://')) return 8;
  return 0;
}

/**
 * Normalises a `urls` list token (`host[:port]/path`, scheme tolerated) into out as
 * `host` + `/path`: host as {@link normaliseDomain}, port and `#fragment` dropped, path bytes kept
 * (case-sensitive) with non-ASCII bytes percent-encoded as browsers send them.
 * Returns the total length and the host length, or JUNK.
 */
export function normaliseUrl(
  src: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): { length: number; hostLength: number } | typeof JUNK {
  const from = start + schemeLength(src, start, end);
  let slash = from;
  while (slash < end && src[slash] !== SLASH) slash++;
  let hostEnd = slash;
  // a ":port" (digits only) after the host; IPv6 literals in urls lists need brackets
  if (src[from] === 91) {
    while (hostEnd > from && src[hostEnd - 1] !== 93) hostEnd--;
    if (hostEnd === from) return JUNK;
  } else {
    for (let i = from; i < slash; i++) {
      if (src[i] === COLON) {
        hostEnd = i;
        break;
      }
    }
  }
  const hostLength = normaliseDomain(src, from, hostEnd, out, 0);
  if (hostLength === JUNK) return JUNK;
  let length = hostLength;
  for (let i = slash; i < end; i++) {
    const code = src[i];
    if (code === HASH) break;
    if (code >= 128) {
      if (length + 3 > out.length) return JUNK;
      out[length++] = 37; // '%'
      out[length++] = HEX.charCodeAt(code >> 4);
      out[length++] = HEX.charCodeAt(code & 15);
    } else {
      if (length + 1 > out.length) return JUNK;
      out[length++] = code;
    }
  }
  return { length, hostLength };
}
