/**
 * Policy URL pattern lists (`objects.urlPatterns`): a few to a few thousand hand-written patterns,
 * indexed by host so a match costs one map lookup per label of the request host.
 */
import { UrlPatternError } from './errors.js';
import { isIpv4Literal, normaliseHost } from './host.js';
import { normaliseDomain } from './list-entry.js';

/** The parts of a request URL that patterns look at. */
export interface RequestUrl {
  scheme: 'http' | 'https';
  host: string;
  /** Defaults to 80 for http and 443 for https. */
  port?: number;
  /** Path + query as sent (`/a/b?c`); '' when unknown (a CONNECT without interception). */
  path: string;
}

/** A compiled pattern list. */
export interface UrlPatternMatcher {
  /** The first pattern (in list order) that matches the URL, as written; undefined when none does. */
  match(url: RequestUrl): string | undefined;
  /** Number of patterns. */
  readonly size: number;
}

/** Which hosts a pattern covers relative to its host part. */
type HostScope = 'domain-and-subdomains' | 'subdomains-only' | 'exact';

interface CompiledPattern {
  text: string;
  order: number;
  scope: HostScope;
  scheme: 'http' | 'https' | undefined;
  port: number | undefined;
  /** Case-sensitive prefix of path + query; '' matches every path. */
  path: string;
}

const PATTERN = /^(?:(https?):\/\/)?(\*\.)?([^/:?#\s]+)(?::(\d{1,5}))?(\/\S*)?$/i;

/**
 * Compiles URL patterns. Semantics:
 *
 * - `example.com` matches example.com and every subdomain (label boundaries: not `notexample.com`).
 * - `*.example.com` matches subdomains only, not example.com itself (list `example.com` for both).
 * - `example.com/path` additionally needs the path + query to start with `/path` (case-sensitive,
 *   plain prefix: `/path` also covers `/pathology`; write `/path/` to stop at the segment).
 * - `https://...` (or `http://`) restricts the scheme; `:8443` restricts the port.
 * - An IP address matches only that address.
 * - Hosts compare case-insensitively, with trailing dots and IDNs normalised.
 *
 * Throws {@link UrlPatternError} for a pattern it cannot read.
 */
export function compileUrlPatterns(patterns: readonly string[]): UrlPatternMatcher {
  const byHost = new Map<string, CompiledPattern[]>();
  patterns.forEach((text, order) => {
    const { host, pattern } = compilePattern(text, order);
    const list = byHost.get(host);
    if (list === undefined) byHost.set(host, [pattern]);
    else list.push(pattern);
  });
  return {
    size: patterns.length,
    match(url: RequestUrl): string | undefined {
      const host = normaliseHost(url.host);
      if (host === '') return undefined;
      const port = url.port ?? (url.scheme === 'https' ? 443 : 80);
      let best: CompiledPattern | undefined;
      const consider = (candidates: CompiledPattern[] | undefined, isParent: boolean): void => {
        if (candidates === undefined) return;
        for (const pattern of candidates) {
          if (best !== undefined && pattern.order > best.order) return;
          if (isParent ? pattern.scope === 'exact' : pattern.scope === 'subdomains-only') continue;
          if (pattern.scheme !== undefined && pattern.scheme !== url.scheme) continue;
          if (pattern.port !== undefined && pattern.port !== port) continue;
          if (!url.path.startsWith(pattern.path)) continue;
          best = pattern;
          return;
        }
      };
      consider(byHost.get(host), false);
      if (!isIpv4Literal(host) && !host.includes(':')) {
        for (let dot = host.indexOf('.'); dot !== -1; dot = host.indexOf('.', dot + 1)) {
          consider(byHost.get(host.slice(dot + 1)), true);
        }
      }
      return best?.text;
    },
  };
}

function compilePattern(text: string, order: number): { host: string; pattern: CompiledPattern } {
  const parts = PATTERN.exec(text.trim());
  if (parts === null) throw new UrlPatternError(text);
  const [, scheme, wildcard, rawHost = '', portText, path = ''] = parts;
  const host = normaliseHost(rawHost);
  const isIp = isIpv4Literal(host);
  if (host === '' || (isIp && wildcard !== undefined) || !isValidName(host)) throw new UrlPatternError(text);
  const port = portText === undefined ? undefined : Number(portText);
  if (port !== undefined && (port < 1 || port > 65535)) throw new UrlPatternError(text);
  const scope: HostScope = isIp
    ? 'exact'
    : wildcard !== undefined
      ? 'subdomains-only'
      : 'domain-and-subdomains';
  return {
    host,
    pattern: {
      text,
      order,
      scope,
      scheme: scheme === undefined ? undefined : (scheme.toLowerCase() as 'http' | 'https'),
      port,
      path,
    },
  };
}

function isValidName(host: string): boolean {
  const bytes = Buffer.from(host, 'latin1');
  return normaliseDomain(bytes, 0, bytes.length, new Uint8Array(bytes.length)) === bytes.length;
}
