/**
 * Turns a validated policy into what the proxy evaluates per request: security rules with their
 * references expanded, and each rule's UTM policy resolved to ready-to-use web and content filters.
 * Compiled once per policy version; requests in flight keep the version they started with.
 */
import { readFile } from 'node:fs/promises';
import {
  type AntivirusProfile,
  type ContentFilteringProfile,
  type ExpandedAddresses,
  expandAddresses,
  expandServices,
  type Policy,
  parseAddress,
  type Schedule,
  type Service,
  type TlsInspectionProfile,
  type WebFilteringProfile,
} from '@moat/policy';
import { type CategorySource, compileUrlPatterns, type UrlPatternMatcher } from '@moat/urlfilter';

export interface NamedPatterns {
  list: string;
  matcher: UrlPatternMatcher;
}

export interface WebFilter {
  profile: string;
  defaultAction: 'allow' | 'block';
  allowPatterns: NamedPatterns[];
  blockPatterns: NamedPatterns[];
  allowCategories: ReadonlySet<string>;
  blockCategories: ReadonlySet<string>;
  message?: string;
}

export interface ContentFilter {
  profile: string;
  /** "type/subtype" or "type/*", lower-case. */
  blockMimeTypes: readonly string[];
  blockExtensions: ReadonlySet<string>;
  maxRequestBodySize?: number;
  maxResponseBodySize?: number;
}

/** A tls-inspection profile, ready to decide bump, splice or block for a connection. */
export interface TlsInspection {
  profile: string;
  mode: 'bump' | 'splice';
  bypassCategories: ReadonlySet<string>;
  /** Hosts never bumped (certificate-pinned applications). */
  bypassHosts: UrlPatternMatcher;
  /** Categories refused at the handshake, before any decryption. */
  blockCategories: ReadonlySet<string>;
  /** PEM text of the profile's extra trusted CAs (read when the policy is applied). */
  extraCas: readonly string[];
  /** Hosts whose upstream certificate problems are tolerated (exact names, or "*.example.com"). */
  validationExceptions: HostList;
  minClientTls: 'TLSv1.2' | 'TLSv1.3';
}

/** Exact host names, and "*.example.com" for every name below example.com. */
export interface HostList {
  matches(host: string): string | undefined;
}

export function compileHostList(entries: readonly string[]): HostList {
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const entry of entries) {
    const host = entry.toLowerCase().replace(/\.$/, '');
    if (host.startsWith('*.')) suffixes.push(host.slice(1));
    else exact.add(host);
  }
  return {
    matches(host) {
      const name = host.toLowerCase().replace(/\.$/, '');
      if (exact.has(name)) return name;
      const suffix = suffixes.find((s) => name.endsWith(s) && name.length > s.length);
      return suffix === undefined ? undefined : `*${suffix}`;
    },
  };
}

/** The engines that inspect one protocol of a permitted flow. */
export interface Inspection {
  utmPolicy: string;
  /** https only: how TLS is mediated (no profile: spliced, decided on the host name alone). */
  tls?: TlsInspection;
  webFilter?: WebFilter;
  contentFilter?: ContentFilter;
  antivirus?: Antivirus;
}

/** An antivirus profile, ready to decide what to scan and what a missing verdict means. */
export interface Antivirus {
  profile: string;
  maxScanSize: number;
  overSizeAction: 'block' | 'allow';
  /** Scan only these types ("type/subtype" or "type/*"); undefined = every type. */
  scanMimeTypes?: readonly string[];
  /** Scan only files with these extensions; undefined = every file. */
  scanExtensions?: ReadonlySet<string>;
  failMode: 'closed' | 'open';
  timeoutMs: number;
  scanDownloads: boolean;
  scanUploads: boolean;
}

export interface CompiledRule {
  name: string;
  /** undefined = any zone */
  fromZones?: ReadonlySet<string>;
  toZones?: ReadonlySet<string>;
  source: ExpandedAddresses;
  destination: ExpandedAddresses;
  /** undefined = any service */
  services?: Service[];
  schedule?: Schedule;
  action: 'permit' | 'deny' | 'reject';
  http?: Inspection;
  https?: Inspection;
}

export interface ProxyPolicy {
  version: number;
  rules: CompiledRule[];
  /** interface name → zone */
  zoneOfInterface: ReadonlyMap<string, string>;
  /** URL categories the rules use, for the list manager. */
  categorySources: CategorySource[];
}

const zoneSet = (zones: readonly string[]) => (zones.includes('any') ? undefined : new Set(zones));

/** A list object reference (a name) or an inline list. */
function listValues(ref: string | readonly string[] | undefined, lists: Record<string, readonly string[]>) {
  if (ref === undefined) return [];
  return typeof ref === 'string' ? (lists[ref] ?? []) : ref;
}

function compileWebFilter(policy: Policy, name: string, profile: WebFilteringProfile): WebFilter {
  const patterns = (lists: readonly string[]) =>
    lists.map((list) => ({ list, matcher: compileUrlPatterns(policy.objects.urlPatterns[list] ?? []) }));
  return {
    profile: name,
    defaultAction: profile.defaultAction,
    allowPatterns: patterns(profile.allowUrlPatterns),
    blockPatterns: patterns(profile.blockUrlPatterns),
    allowCategories: new Set(profile.allowCategories),
    blockCategories: new Set(profile.blockCategories),
    ...(profile.blockPageMessage ? { message: profile.blockPageMessage } : {}),
  };
}

function compileContentFilter(policy: Policy, name: string, profile: ContentFilteringProfile): ContentFilter {
  return {
    profile: name,
    blockMimeTypes: listValues(profile.blockMimeTypes, policy.objects.mimeLists).map((m) => m.toLowerCase()),
    blockExtensions: new Set(listValues(profile.blockExtensions, policy.objects.extensionLists)),
    ...(profile.maxRequestBodySize !== undefined ? { maxRequestBodySize: profile.maxRequestBodySize } : {}),
    ...(profile.maxResponseBodySize !== undefined
      ? { maxResponseBodySize: profile.maxResponseBodySize }
      : {}),
  };
}

function compileAntivirus(policy: Policy, name: string, profile: AntivirusProfile): Antivirus {
  return {
    profile: name,
    maxScanSize: profile.maxScanSize,
    overSizeAction: profile.overSizeAction,
    ...(profile.scanMimeTypes !== undefined
      ? {
          scanMimeTypes: listValues(profile.scanMimeTypes, policy.objects.mimeLists).map((m) =>
            m.toLowerCase(),
          ),
        }
      : {}),
    ...(profile.scanExtensions !== undefined
      ? { scanExtensions: new Set(listValues(profile.scanExtensions, policy.objects.extensionLists)) }
      : {}),
    failMode: profile.failMode,
    timeoutMs: profile.timeoutMs,
    scanDownloads: profile.scanDownloads,
    scanUploads: profile.scanUploads,
  };
}

async function readCaFiles(files: readonly string[]): Promise<string[]> {
  return Promise.all(
    files.map(async (file) => {
      const text = await readFile(file, 'utf8').catch((err: Error) => {
        throw new Error(`cannot read the extra CA file ${file}: ${err.message}`);
      });
      if (!text.includes('-----BEGIN CERTIFICATE-----'))
        throw new Error(`the extra CA file ${file} holds no PEM certificate`);
      return text;
    }),
  );
}

async function compileTlsInspection(
  policy: Policy,
  name: string,
  profile: TlsInspectionProfile,
): Promise<TlsInspection> {
  const bypassHosts =
    typeof profile.bypassHosts === 'string'
      ? (policy.objects.urlPatterns[profile.bypassHosts] ?? [])
      : (profile.bypassHosts ?? []);
  return {
    profile: name,
    mode: profile.mode,
    bypassCategories: new Set(profile.bypassCategories),
    bypassHosts: compileUrlPatterns(bypassHosts),
    blockCategories: new Set(profile.blockCategories),
    extraCas: await readCaFiles(profile.upstreamValidation.extraCaFiles),
    validationExceptions: compileHostList(profile.upstreamValidation.exceptions),
    minClientTls: profile.minClientTls === '1.3' ? 'TLSv1.3' : 'TLSv1.2',
  };
}

async function compileInspection(
  policy: Policy,
  utmPolicy: string,
  protocol: 'http' | 'https',
): Promise<Inspection | undefined> {
  const section = policy.utmPolicies[utmPolicy]?.[protocol];
  if (!section) return { utmPolicy };
  const inspection: Inspection = { utmPolicy };
  const { profiles } = policy;
  const web = section.webFiltering ? profiles.webFiltering[section.webFiltering] : undefined;
  if (section.webFiltering && web) inspection.webFilter = compileWebFilter(policy, section.webFiltering, web);
  const content = section.contentFiltering ? profiles.contentFiltering[section.contentFiltering] : undefined;
  if (section.contentFiltering && content) {
    inspection.contentFilter = compileContentFilter(policy, section.contentFiltering, content);
  }
  const av = section.antivirus ? profiles.antivirus[section.antivirus] : undefined;
  if (section.antivirus && av) inspection.antivirus = compileAntivirus(policy, section.antivirus, av);
  const tls =
    'tlsInspection' in section && section.tlsInspection
      ? profiles.tlsInspection[section.tlsInspection]
      : undefined;
  if (protocol === 'https' && 'tlsInspection' in section && section.tlsInspection && tls) {
    inspection.tls = await compileTlsInspection(policy, section.tlsInspection, tls);
  }
  return inspection;
}

/** Reads the address-set files a rule names (blocklists), one address, prefix or range per line. */
async function withFileEntries(addresses: ExpandedAddresses): Promise<ExpandedAddresses> {
  if (addresses.files.length === 0) return addresses;
  const ranges = [...addresses.ranges];
  for (const file of addresses.files) {
    const text = await readFile(file, 'utf8').catch((err: Error) => {
      throw new Error(`cannot read address-set file ${file}: ${err.message}`);
    });
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (!line) continue;
      const parsed = parseAddress(line);
      if (!('error' in parsed) && parsed.kind !== 'dns') ranges.push(parsed);
    }
  }
  return { ...addresses, ranges };
}

/** The URL categories referenced by web filters, as list-manager sources. */
function categorySourcesOf(policy: Policy, rules: readonly CompiledRule[]): CategorySource[] {
  const used = new Set<string>();
  for (const rule of rules) {
    for (const inspection of [rule.http, rule.https]) {
      for (const name of inspection?.webFilter?.allowCategories ?? []) used.add(name);
      for (const name of inspection?.webFilter?.blockCategories ?? []) used.add(name);
      for (const name of inspection?.tls?.bypassCategories ?? []) used.add(name);
      for (const name of inspection?.tls?.blockCategories ?? []) used.add(name);
    }
  }
  return [...used].sort().map((name) => {
    const category = policy.objects.urlCategories[name];
    return {
      name,
      ...(category?.domains ? { domains: category.domains } : {}),
      ...(category?.urls ? { urls: category.urls } : {}),
      ...(category?.source ? { source: category.source } : {}),
      ...(category?.categories ? { categories: category.categories } : {}),
    };
  });
}

export async function compileProxyPolicy(policy: Policy, version: number): Promise<ProxyPolicy> {
  const rules: CompiledRule[] = [];
  for (const rule of policy.securityRules) {
    if (rule.disabled) continue;
    const schedule = rule.schedule ? policy.objects.schedules[rule.schedule] : undefined;
    const fromZones = zoneSet(rule.fromZones);
    const toZones = zoneSet(rule.toZones);
    const services = expandServices(policy, rule.service);
    const compiled: CompiledRule = {
      name: rule.name,
      ...(fromZones ? { fromZones } : {}),
      ...(toZones ? { toZones } : {}),
      source: await withFileEntries(expandAddresses(policy, rule.source)),
      destination: await withFileEntries(expandAddresses(policy, rule.destination)),
      ...(services ? { services } : {}),
      ...(schedule ? { schedule } : {}),
      action: rule.action,
    };
    if (rule.action === 'permit' && rule.utmPolicy) {
      const http = await compileInspection(policy, rule.utmPolicy, 'http');
      const https = await compileInspection(policy, rule.utmPolicy, 'https');
      if (http) compiled.http = http;
      if (https) compiled.https = https;
    }
    rules.push(compiled);
  }
  const zoneOfInterface = new Map<string, string>();
  for (const [zone, definition] of Object.entries(policy.zones)) {
    for (const iface of definition.interfaces) zoneOfInterface.set(iface, zone);
  }
  return { version, rules, zoneOfInterface, categorySources: categorySourcesOf(policy, rules) };
}
