/**
 * Request targets: what the client asked for, checked before anything leaves the proxy. The three
 * forms a forward proxy meets (RFC 9112 §3.2): absolute-form (explicit proxy), authority-form
 * (CONNECT) and origin-form with a Host header (intercepted traffic).
 */
import { isIP } from 'node:net';

export interface Target {
  scheme: 'http' | 'https';
  /** Lower-case host name or IP literal, without brackets or a trailing dot. */
  host: string;
  port: number;
  /** Path and query, always starting with "/" (empty for CONNECT). */
  path: string;
}

export class BadTargetError extends Error {
  override name = 'BadTargetError';
}

const HOST_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/** Normalises a host (name or IP literal); throws BadTargetError for anything else. */
export function normaliseHost(raw: string): string {
  let host = raw.toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (isIP(host) !== 6) throw new BadTargetError(`"${raw}" is not a valid IPv6 literal`);
    return host;
  }
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (isIP(host) === 4) return host;
  if (host.length === 0 || host.length > 253) throw new BadTargetError(`invalid host name "${raw}"`);
  if (!host.split('.').every((label) => HOST_LABEL.test(label))) {
    throw new BadTargetError(`invalid host name "${raw}"`);
  }
  // all-numeric names that are not valid IPv4 ("1.2.3", "999.1.1.1") are ambiguous across resolvers
  if (/^[0-9.]+$/.test(host)) throw new BadTargetError(`"${raw}" is neither a host name nor an IPv4 address`);
  return host;
}

function parsePort(raw: string, fallback: number): number {
  if (raw === '') return fallback;
  if (!/^\d{1,5}$/.test(raw)) throw new BadTargetError(`invalid port "${raw}"`);
  const port = Number(raw);
  if (port < 1 || port > 65535) throw new BadTargetError(`port ${port} is out of range`);
  return port;
}

/** Splits "host:port" / "[v6]:port" / "host" into its parts. */
function splitAuthority(authority: string, defaultPort: number | undefined): { host: string; port: number } {
  if (authority.includes('@')) throw new BadTargetError('credentials in the request target are not allowed');
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::(\d*))?$/.exec(authority);
  if (!match) throw new BadTargetError(`invalid authority "${authority}"`);
  const port = match[2];
  if ((port === undefined || port === '') && defaultPort === undefined) {
    throw new BadTargetError(`"${authority}" has no port; CONNECT needs host:port`);
  }
  return {
    host: normaliseHost(match[1] ?? ''),
    port: parsePort(port ?? '', defaultPort ?? 0),
  };
}

const DEFAULT_PORTS = { http: 80, https: 443 } as const;

/** An absolute-form target ("http://host[:port]/path?query"), as sent to an explicit proxy. */
export function parseAbsoluteTarget(url: string): Target {
  const match = /^(https?):\/\/([^/?#]*)([^#]*)$/i.exec(url);
  if (!match) {
    if (url.startsWith('/')) {
      throw new BadTargetError('origin-form request sent to the explicit proxy port; send an absolute URI');
    }
    throw new BadTargetError(`unsupported request target "${truncate(url)}" (only http:// URIs here)`);
  }
  const scheme = (match[1] ?? 'http').toLowerCase() as 'http' | 'https';
  const { host, port } = splitAuthority(match[2] ?? '', DEFAULT_PORTS[scheme]);
  return { scheme, host, port, path: normalisePath(match[3] ?? '') };
}

/** A CONNECT target ("host:port"). */
export function parseConnectTarget(authority: string): Target {
  const { host, port } = splitAuthority(authority, undefined);
  return { scheme: 'https', host, port, path: '' };
}

/** An intercepted request: origin-form path plus Host header (its port defaults to the original one). */
export function parseInterceptedTarget(
  path: string,
  hostHeader: string | undefined,
  originalPort: number,
): Target {
  if (!hostHeader) throw new BadTargetError('intercepted request without a Host header');
  if (!path.startsWith('/')) {
    // some clients send absolute-form even when intercepted; accept it only if it agrees with the Host
    // header, or filtering would judge one site while a shared server answers for another
    const target = parseAbsoluteTarget(path);
    const host = splitAuthority(hostHeader, target.port);
    if (host.host !== target.host || host.port !== target.port)
      throw new BadTargetError(
        `the request names ${formatAuthority(target.host, target.port)} but its Host header ${hostHeader}`,
      );
    return target;
  }
  const { host, port } = splitAuthority(hostHeader, originalPort);
  return { scheme: 'http', host, port, path: normalisePath(path) };
}

function normalisePath(path: string): string {
  if (path === '') return '/';
  if (path.startsWith('?')) return `/${path}`;
  if (!path.startsWith('/')) throw new BadTargetError(`invalid path "${truncate(path)}"`);
  return path;
}

export function formatAuthority(host: string, port: number, scheme?: 'http' | 'https'): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return scheme && DEFAULT_PORTS[scheme] === port ? h : `${h}:${port}`;
}

export function formatUrl(target: Target): string {
  if (target.path === '') return formatAuthority(target.host, target.port);
  return `${target.scheme}://${formatAuthority(target.host, target.port, target.scheme)}${target.path}`;
}

/** The URL without its query string: what spans and metrics may carry (queries hold tokens). */
export function redactedUrl(target: Target): string {
  const q = target.path.indexOf('?');
  return formatUrl(q < 0 ? target : { ...target, path: target.path.slice(0, q) });
}

const truncate = (text: string) => (text.length > 80 ? `${text.slice(0, 77)}...` : text);
