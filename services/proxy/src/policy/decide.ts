/**
 * The proxy's decisions, as pure functions of the compiled policy: which security rule a flow
 * matches, what URL filtering says about a URL, and what content filtering says about a message.
 * No I/O here; the request pipeline gathers the facts and acts on the verdict.
 */
import { extname } from 'node:path/posix';
import { addressInRanges, isScheduleActive, servicesCover } from '@moat/policy';
import type { UrlCategorizer } from '@moat/urlfilter';
import type { Target } from '../http/target.js';
import type { CompiledRule, ContentFilter, ProxyPolicy, WebFilter } from './compile.js';

/** Who talks to whom: what rule matching needs. */
export interface Flow {
  clientIp: string;
  clientZone?: string;
  /** The upstream address the proxy will connect to. */
  serverIp: string;
  serverZone?: string;
  host: string;
  port: number;
}

/** Which engine decided, and on what grounds: this feeds block pages, events, spans and logs. */
export interface Verdict {
  action: 'allow' | 'block';
  /** firewall (security rules), web-filter, content-filter, tls-mediation, antivirus */
  engine: 'firewall' | 'web-filter' | 'content-filter' | 'tls-mediation' | 'antivirus';
  reason: string;
  /** Junos-style event tag. */
  tag: string;
  status: number;
  rule?: string;
  category?: string;
  /** The URL pattern list and pattern that matched. */
  pattern?: string;
  profile?: string;
  utmPolicy?: string;
  message?: string;
  /** The antivirus signature that matched. */
  signature?: string;
}

export function matchRule(policy: ProxyPolicy, flow: Flow, now: Date): CompiledRule | undefined {
  return policy.rules.find((rule) => ruleMatches(rule, flow, now));
}

function addressMatches(addresses: CompiledRule['source'], ip: string, host?: string): boolean {
  if (addresses.any) return true;
  if (host !== undefined && addresses.dnsNames.includes(host)) return true;
  return addressInRanges(ip, addresses.ranges);
}

function ruleMatches(rule: CompiledRule, flow: Flow, now: Date): boolean {
  if (rule.fromZones && (!flow.clientZone || !rule.fromZones.has(flow.clientZone))) return false;
  if (rule.toZones && (!flow.serverZone || !rule.toZones.has(flow.serverZone))) return false;
  if (!servicesCover(rule.services, 'tcp', flow.port)) return false;
  if (!addressMatches(rule.source, flow.clientIp)) return false;
  if (!addressMatches(rule.destination, flow.serverIp, flow.host)) return false;
  if (rule.schedule && !isScheduleActive(rule.schedule, now)) return false;
  return true;
}

/** The security-rule verdict: a deny/reject rule, or no rule at all (default deny), blocks. */
export function ruleVerdict(rule: CompiledRule | undefined): Verdict | undefined {
  if (!rule) {
    return {
      action: 'block',
      engine: 'firewall',
      tag: 'RT_FLOW_SESSION_DENY',
      status: 403,
      reason: 'No security rule permits this connection (default deny).',
    };
  }
  if (rule.action === 'permit') return undefined;
  return {
    action: 'block',
    engine: 'firewall',
    tag: 'RT_FLOW_SESSION_DENY',
    status: 403,
    rule: rule.name,
    reason: `Security rule "${rule.name}" ${rule.action === 'deny' ? 'denies' : 'rejects'} this connection.`,
  };
}

function firstPatternMatch(lists: WebFilter['allowPatterns'], target: Target) {
  for (const { list, matcher } of lists) {
    const pattern = matcher.match(target);
    if (pattern !== undefined) return `${list}: ${pattern}`;
  }
  return undefined;
}

/**
 * URL filtering, in the documented precedence: allow patterns, block patterns, allowed categories,
 * blocked categories, then the profile's default action.
 */
export function filterUrl(filter: WebFilter, target: Target, categorizer: UrlCategorizer): Verdict {
  const base = {
    engine: 'web-filter' as const,
    profile: filter.profile,
    ...(filter.message ? { message: filter.message } : {}),
  };
  const allowed = firstPatternMatch(filter.allowPatterns, target);
  if (allowed) {
    return {
      ...base,
      action: 'allow',
      tag: 'WEBFILTER_URL_PERMITTED',
      status: 200,
      pattern: allowed,
      reason: 'URL is on an allow list.',
    };
  }
  const blocked = firstPatternMatch(filter.blockPatterns, target);
  if (blocked) {
    return {
      ...base,
      action: 'block',
      tag: 'WEBFILTER_URL_BLOCKED',
      status: 403,
      pattern: blocked,
      reason: `The URL matches the blocked pattern list "${blocked.split(':')[0]}".`,
    };
  }
  const categories = categorizer.categorize(target.host, target.path);
  const allowedCategory = categories.find((c) => filter.allowCategories.has(c));
  if (allowedCategory) {
    return {
      ...base,
      action: 'allow',
      tag: 'WEBFILTER_URL_PERMITTED',
      status: 200,
      category: allowedCategory,
      reason: `Category "${allowedCategory}" is allowed.`,
    };
  }
  const blockedCategory = categories.find((c) => filter.blockCategories.has(c));
  if (blockedCategory) {
    return {
      ...base,
      action: 'block',
      tag: 'WEBFILTER_URL_BLOCKED',
      status: 403,
      category: blockedCategory,
      reason: `The site is in the blocked category "${blockedCategory}".`,
    };
  }
  const category = categories[0];
  if (filter.defaultAction === 'block') {
    return {
      ...base,
      action: 'block',
      tag: 'WEBFILTER_URL_BLOCKED',
      status: 403,
      ...(category ? { category } : {}),
      reason: 'The site is not on any allow list, and this profile blocks everything else.',
    };
  }
  return {
    ...base,
    action: 'allow',
    tag: 'WEBFILTER_URL_PERMITTED',
    status: 200,
    ...(category ? { category } : {}),
    reason: 'No filter matched.',
  };
}

/** Lower-case extension of the last path segment ("tar.gz" style double extensions included). */
export function extensionsOf(fileName: string): string[] {
  const base = fileName.split('/').pop() ?? '';
  const parts = base.toLowerCase().split('.').slice(1);
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) out.push(parts.slice(i).join('.'));
  return out.filter(Boolean);
}

/** The path without query or fragment, percent-decoded: what a client saves the file as. */
export function pathOnly(path: string): string {
  const q = path.search(/[?#]/);
  let p = q < 0 ? path : path.slice(0, q);
  try {
    p = decodeURIComponent(p);
  } catch {
    // a malformed escape stays as sent; the extension check then sees the raw text
  }
  return extname(p) === '' ? '' : p;
}

function contentBlock(filter: ContentFilter, reason: string, status = 403): Verdict {
  return {
    action: 'block',
    engine: 'content-filter',
    tag: 'CONTENT_FILTERING_BLOCKED',
    status,
    profile: filter.profile,
    reason,
  };
}

/** Checks made before the request is sent: the URL's file extension and the declared request size. */
export function filterRequest(
  filter: ContentFilter,
  target: Target,
  contentLength: number | undefined,
): Verdict | undefined {
  const blockedExt = extensionsOf(pathOnly(target.path)).find((ext) => filter.blockExtensions.has(ext));
  if (blockedExt) return contentBlock(filter, `Files with the extension ".${blockedExt}" are blocked.`);
  if (
    filter.maxRequestBodySize !== undefined &&
    contentLength !== undefined &&
    contentLength > filter.maxRequestBodySize
  ) {
    return contentBlock(
      filter,
      `The request body (${contentLength} bytes) exceeds the limit of ${filter.maxRequestBodySize} bytes.`,
      413,
    );
  }
  return undefined;
}

export function mimeMatches(patterns: readonly string[], mime: string | undefined): string | undefined {
  if (!mime) return undefined;
  const [type] = mime.split('/');
  return patterns.find((p) => p === mime || (p.endsWith('/*') && p.slice(0, -2) === type));
}

/** Media type of a Content-Type header, lower-case, without parameters. */
export function mediaType(contentType: string | undefined): string | undefined {
  const type = contentType?.split(';')[0]?.trim().toLowerCase();
  return type ? type : undefined;
}

/** The file name of a Content-Disposition header (filename*= or filename=), if any. */
export function dispositionFileName(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const extended = /filename\*\s*=\s*[^']*'[^']*'([^;]+)/i.exec(header);
  if (extended?.[1]) {
    try {
      return decodeURIComponent(extended[1].trim());
    } catch {
      return extended[1].trim();
    }
  }
  const plain = /filename\s*=\s*(?:"([^"]*)"|([^;]+))/i.exec(header);
  return (plain?.[1] ?? plain?.[2])?.trim();
}

export interface ResponseFacts {
  declaredType?: string;
  sniffed?: { mime: string; ext: string };
  fileName?: string;
  contentLength?: number;
}

/** Checks on response headers (and the sniffed type of the first bytes, where there was one). */
export function filterResponse(filter: ContentFilter, facts: ResponseFacts): Verdict | undefined {
  const declared = mimeMatches(filter.blockMimeTypes, facts.declaredType);
  if (declared) return contentBlock(filter, `Content of type ${facts.declaredType} is blocked.`);
  const sniffed = mimeMatches(filter.blockMimeTypes, facts.sniffed?.mime);
  if (sniffed && facts.sniffed) {
    return contentBlock(
      filter,
      `The content is ${facts.sniffed.mime} (detected from its first bytes${facts.declaredType ? `; the server declared ${facts.declaredType}` : ''}), which is blocked.`,
    );
  }
  const names = [
    facts.fileName ? extensionsOf(facts.fileName) : [],
    facts.sniffed ? [facts.sniffed.ext] : [],
  ].flat();
  const ext = names.find((e) => filter.blockExtensions.has(e));
  if (ext) return contentBlock(filter, `Files with the extension ".${ext}" are blocked.`);
  if (
    filter.maxResponseBodySize !== undefined &&
    facts.contentLength !== undefined &&
    facts.contentLength > filter.maxResponseBodySize
  ) {
    return contentBlock(
      filter,
      `The response (${facts.contentLength} bytes) exceeds the limit of ${filter.maxResponseBodySize} bytes.`,
    );
  }
  return undefined;
}
