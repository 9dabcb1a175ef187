/**
 * Address lists of rules, as nft matches: inline elements (merged intervals) and named sets for the
 * files of large address sets (blocklists). A file gives up to two sets per family: its single
 * addresses in a hash set, and its prefixes and ranges in an interval set. The kernel loads a
 * million addresses into a hash set in about a third of the time an interval set takes.
 */
import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { expandAddresses, formatIp, type IpFamily, type Policy, parseAddress } from '@moat/policy';
import {
  addressType,
  anonymousSet,
  type Interval,
  intervalElement,
  mergeIntervals,
  quote,
} from './syntax.js';

/** A file of entries that could not be read or parsed; the policy is refused with this message. */
export class AddressFileError extends Error {
  override name = 'AddressFileError';
}

/** What an address list covers in one family: inline elements and named sets (either may be empty). */
export interface FamilyAddresses {
  elements: string[];
  sets: string[];
}

export interface AddressList {
  any: boolean;
  byFamily: Record<IpFamily, FamilyAddresses>;
  /** DNS-name address objects in the list; the firewall does not resolve names yet. */
  dnsNames: string[];
}

export interface NamedAddressSet {
  /** Stable for a file path, so a ruleset update can keep a set whose file did not change. */
  name: string;
  family: IpFamily;
  /** Prefixes and ranges (an interval set); otherwise single addresses (a hash set). */
  interval: boolean;
  /** The file the entries came from (for the set's comment and for reports). */
  file: string;
  elements: string[];
  /** Identifies the content: equal digests, equal elements. */
  digest: string;
}

/**
 * Parsed address files by path, kept between renders: a 1M-line blocklist takes seconds to parse,
 * and an unchanged file (same content hash) is not parsed again.
 */
export type AddressFileCache = Map<string, { textDigest: string; sets: NamedAddressSet[] }>;

/** Reads a file's text; the apply step passes one that reads from disk. */
export type ReadFile = (path: string) => string;

/** A list file's entries by family: single addresses (as nft element text) and intervals. */
export interface AddressFileEntries {
  singles: Record<IpFamily, Set<string>>;
  ranges: Record<IpFamily, Interval[]>;
}

/**
 * Parses a list file: one address, prefix or range per line, `#` comments and blank lines ignored.
 * Plain IPv4 addresses, most of a typical blocklist, skip the general parser: Node's isIPv4 accepts
 * only the canonical dotted form, so the line itself is the set element.
 */
export function parseAddressFile(path: string, text: string): AddressFileEntries {
  const entries: AddressFileEntries = { singles: { 4: new Set(), 6: new Set() }, ranges: { 4: [], 6: [] } };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    let line = lines[i] as string;
    const hash = line.indexOf('#');
    if (hash >= 0) line = line.slice(0, hash);
    line = line.trim();
    if (line === '') continue;
    if (isIPv4(line)) {
      entries.singles[4].add(line);
      continue;
    }
    const parsed = parseAddress(line);
    if ('error' in parsed) throw new AddressFileError(`${path}:${i + 1}: ${parsed.error}`);
    if (parsed.kind === 'dns') {
      throw new AddressFileError(
        `${path}:${i + 1}: "${line}" is a DNS name; address files hold addresses, prefixes and ranges only`,
      );
    }
    if (parsed.first === parsed.last)
      entries.singles[parsed.family].add(formatIp(parsed.family, parsed.first));
    else entries.ranges[parsed.family].push({ first: parsed.first, last: parsed.last });
  }
  return entries;
}

/** Turns address references into nft matches, loading each referenced file once. */
export class AddressCompiler {
  private readonly fileSets = new Map<string, NamedAddressSet[]>();

  constructor(
    private readonly policy: Policy,
    private readonly readFile: ReadFile,
    private readonly cache: AddressFileCache = new Map(),
  ) {}

  /** The named sets loaded from files, in the order they were first referenced. */
  namedSets(): NamedAddressSet[] {
    return [...this.fileSets.values()].flat();
  }

  compile(refs: readonly string[]): AddressList {
    const expanded = expandAddresses(this.policy, refs);
    const list: AddressList = {
      any: expanded.any,
      byFamily: { 4: { elements: [], sets: [] }, 6: { elements: [], sets: [] } },
      dnsNames: expanded.dnsNames,
    };
    if (expanded.any) return list;
    for (const family of [4, 6] as const) {
      const intervals = expanded.ranges.filter((range) => range.family === family);
      list.byFamily[family].elements = mergeIntervals(intervals).map((i) => intervalElement(family, i));
    }
    for (const file of expanded.files) {
      for (const set of this.fileSet(file)) list.byFamily[set.family].sets.push(set.name);
    }
    return list;
  }

  /** An address list of literal addresses, prefixes and ranges (VPN pools, NAT targets). */
  compileLiterals(texts: readonly string[]): AddressList {
    const list: AddressList = {
      any: false,
      byFamily: { 4: { elements: [], sets: [] }, 6: { elements: [], sets: [] } },
      dnsNames: [],
    };
    const intervals: Record<IpFamily, Interval[]> = { 4: [], 6: [] };
    for (const text of texts) {
      const parsed = parseAddress(text);
      if ('error' in parsed || parsed.kind === 'dns') continue; // validation refused these already
      intervals[parsed.family].push({ first: parsed.first, last: parsed.last });
    }
    for (const family of [4, 6] as const)
      list.byFamily[family].elements = mergeIntervals(intervals[family]).map((i) =>
        intervalElement(family, i),
      );
    return list;
  }

  private fileSet(file: string): NamedAddressSet[] {
    const known = this.fileSets.get(file);
    if (known) return known;
    let text: string;
    try {
      text = this.readFile(file);
    } catch (err) {
      throw new AddressFileError(`cannot read address file ${file}: ${(err as Error).message}`);
    }
    const textDigest = createHash('sha256').update(text).digest('hex').slice(0, 32);
    const cached = this.cache.get(file);
    if (cached !== undefined && cached.textDigest === textDigest) {
      this.fileSets.set(file, cached.sets);
      return cached.sets;
    }
    const parsed = parseAddressFile(file, text);
    const pathId = createHash('sha256').update(file).digest('hex').slice(0, 12);
    const sets: NamedAddressSet[] = [];
    for (const family of [4, 6] as const) {
      const add = (kind: 'a' | 'r', elements: string[]) => {
        if (elements.length === 0) return;
        sets.push({
          name: `f${pathId}_${family}${kind}`,
          family,
          interval: kind === 'r',
          file,
          elements,
          digest: `${textDigest}/${family}${kind}`,
        });
      };
      add('a', [...parsed.singles[family]]);
      add(
        'r',
        mergeIntervals(parsed.ranges[family]).map((i) => intervalElement(family, i)),
      );
    }
    this.fileSets.set(file, sets);
    this.cache.set(file, { textDigest, sets });
    return sets;
  }
}

/** Each way an address list can match in `family`, as nft match text for `field` (saddr/daddr). */
export function addressMatches(
  list: AddressList,
  family: IpFamily,
  field: 'saddr' | 'daddr',
): string[] | undefined {
  if (list.any) return undefined;
  const keyword = family === 4 ? 'ip' : 'ip6';
  const { elements, sets } = list.byFamily[family];
  const matches = sets.map((name) => `${keyword} ${field} @${name}`);
  if (elements.length > 0) matches.push(`${keyword} ${field} ${anonymousSet(elements)}`);
  return matches;
}

/**
 * A named set's declaration, without elements (inside a `table … { }` block). Its comment starts
 * with the content digest, so a restarted firewall can tell from the kernel which sets are current.
 */
export function namedSetDeclaration(set: NamedAddressSet): string {
  return `  set ${set.name} {
    type ${addressType(set.family)};${set.interval ? ' flags interval;' : ''}
    comment ${quote(`${set.digest} ${set.file}`.slice(0, 127))}
  }
`;
}

/** The digest a set's comment starts with (see namedSetDeclaration). */
export function digestFromComment(comment: string | undefined): string | undefined {
  return comment?.split(' ', 1)[0];
}

/**
 * The command that fills a set. Large sets are listed one element per line so nft's errors point at
 * a line.
 */
export function addElementsCommand(family: string, table: string, set: NamedAddressSet): string {
  return `add element ${family} ${table} ${set.name} {
  ${set.elements.join(',\n  ')}
}
`;
}
