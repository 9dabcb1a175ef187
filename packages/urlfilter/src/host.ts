/**
 * Host names as lookups see them: lowercase ASCII, no brackets, port or trailing dot, IDNs in
 * punycode, IPv6 in its canonical (RFC 5952) text.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { domainToASCII } from 'node:url';

/**
 * Normalises a host for matching: trims, lowercases, strips `[...]` around IPv6, a `:port`, and
 * trailing dots, and converts an internationalised name to punycode. Returns '' when nothing
 * usable is left (an invalid IDN, a bracketed text that is not IPv6).
 */
export function normaliseHost(host: string): string {
  let text = host.trim();
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    return canonicalIpv6(text.slice(1, close === -1 ? undefined : close)) ?? '';
  }
  const colon = text.indexOf(':');
  if (colon !== -1) {
    if (text.indexOf(':', colon + 1) !== -1) return canonicalIpv6(text) ?? '';
    text = text.slice(0, colon);
  }
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 46) end--;
  text = text.slice(0, end);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the range is "anything beyond ASCII"
  if (/[^\x00-\x7f]/.test(text)) return domainToASCII(text);
  return text.toLowerCase();
}

/** The canonical text of an IPv6 address (zone id dropped), or undefined when it is not one. */
export function canonicalIpv6(text: string): string | undefined {
  const zone = text.indexOf('%');
  const address = zone === -1 ? text : text.slice(0, zone);
  if (!isIPv6(address)) return undefined;
  // the WHATWG URL parser serialises IPv6 per RFC 5952: lowercase, longest zero run compressed
  return new URL(`http://[${address}]/`).hostname.slice(1, -1);
}

/** True for a dotted-quad IPv4 literal in text[start, end). */
export function isIpv4Literal(text: string, start = 0, end = text.length): boolean {
  const last = text.charCodeAt(end - 1);
  // host names end in a letter (TLDs are alphabetic), so most calls stop here
  if (!(last >= 48 && last <= 57)) return false;
  return isIPv4(start === 0 && end === text.length ? text : text.slice(start, end));
}

/**
 * Length of a leading `www`, `web` or `ftp` label with optional digits (`www.`, `www2.`, `ftp.`)
 * in text[start, end), or 0. squidGuard strips this from hosts before matching its `urls` lists,
 * so `www.example.com/page` and `example.com/page` are the same entry.
 */
export function hostPrefixToStrip(text: string, start = 0, end = text.length): number {
  if (end - start < 5) return 0;
  const a = text.charCodeAt(start) | 32;
  const b = text.charCodeAt(start + 1) | 32;
  const c = text.charCodeAt(start + 2) | 32;
  const known =
    (a === 119 && b === 119 && c === 119) || // www
    (a === 119 && b === 101 && c === 98) || // web
    (a === 102 && b === 116 && c === 112); // ftp
  if (!known) return 0;
  let i = start + 3;
  while (i < end && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
  // a dot, and something after it: "www.com" keeps its name
  if (text.charCodeAt(i) !== 46 || text.indexOf('.', i + 1) === -1 || text.indexOf('.', i + 1) >= end)
    return 0;
  return i + 1 - start;
}
