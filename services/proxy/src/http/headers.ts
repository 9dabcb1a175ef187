/**
 * Header rules of a forwarding intermediary (RFC 9110 §7.6): hop-by-hop fields never cross the
 * proxy, Via records it, and the message framing is the proxy's own on each side.
 */
import type { IncomingHttpHeaders } from 'node:http';

const ALWAYS_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // not hop-by-hop by definition, but the proxy answers 100-continue itself and frames bodies itself
  'expect',
  'content-length',
  'host',
]);

export type HeaderMap = Record<string, string | string[]>;

/** Field names the Connection header declares hop-by-hop, lower-cased. */
function connectionTokens(value: string | string[] | undefined): Set<string> {
  const tokens = new Set<string>();
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) tokens.add(t);
    }
  }
  return tokens;
}

/**
 * End-to-end headers of a message, with hop-by-hop ones (and those the proxy sets itself: host,
 * content-length) removed. Works on Node's parsed request headers and on undici's response headers.
 */
export function endToEndHeaders(headers: IncomingHttpHeaders | HeaderMap): HeaderMap {
  const named = connectionTokens(headers.connection as string | string[] | undefined);
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || ALWAYS_HOP_BY_HOP.has(name) || named.has(name)) continue;
    out[name] = value;
  }
  return out;
}

/** Adds this proxy to the Via chain ("1.1 moat"), keeping what earlier hops wrote. */
export function withVia(headers: HeaderMap, httpVersion: string, pseudonym: string): HeaderMap {
  const entry = `${httpVersion} ${pseudonym}`;
  const previous = headers.via;
  const via =
    previous === undefined ? entry : `${Array.isArray(previous) ? previous.join(', ') : previous}, ${entry}`;
  return { ...headers, via };
}

/** True when Via already names this proxy: a request looping back through itself. */
export function isForwardingLoop(viaHeader: string | string[] | undefined, pseudonym: string): boolean {
  if (viaHeader === undefined) return false;
  const entries = (Array.isArray(viaHeader) ? viaHeader.join(',') : viaHeader).split(',');
  return entries.some((entry) => entry.trim().split(/\s+/)[1] === pseudonym);
}

export function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}
