/**
 * Address lists of rules, as nft matches: inline elements (merged intervals) and named sets for the
 * files of large address sets (blocklists), one named set per file and family.
 */
import { expandAddresses, type IpFamily, type Policy, parseAddress } from '@moat/policy';
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
  name: string;
  family: IpFamily;
  /** The file the entries came from (for the set's comment and for reports). */
  file: string;
  elements: string[];
}

/** Reads a file's text; the apply step passes one that reads from disk. */
export type ReadFile = (path: string) => string;

/** Parses a list file: one address, prefix or range per line, `#` comments and blank lines ignored. */
export function parseAddressFile(path: string, text: string): Record<IpFamily, Interval[]> {
  const byFamily: Record<IpFamily, Interval[]> = { 4: [], 6: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/#.*/, '').trim();
    if (line === '') continue;
    const parsed = parseAddress(line);
    if ('error' in parsed) throw new AddressFileError(`${path}:${i + 1}: ${parsed.error}`);
    if (parsed.kind === 'dns') {
      throw new AddressFileError(
        `${path}:${i + 1}: "${line}" is a DNS name; address files hold addresses, prefixes and ranges only`,
      );
    }
    byFamily[parsed.family].push({ first: parsed.first, last: parsed.last });
  }
  return byFamily;
}

/** Turns address references into nft matches, loading each referenced file once. */
export class AddressCompiler {
  private readonly fileSets = new Map<string, Record<IpFamily, NamedAddressSet | undefined>>();

  constructor(
    private readonly policy: Policy,
    private readonly readFile: ReadFile,
  ) {}

  /** The named sets loaded from files, in the order they were first referenced. */
  namedSets(): NamedAddressSet[] {
    return [...this.fileSets.values()].flatMap((byFamily) =>
      [byFamily[4], byFamily[6]].filter((set): set is NamedAddressSet => set !== undefined),
    );
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
      const sets = this.fileSet(file);
      for (const family of [4, 6] as const) {
        const set = sets[family];
        if (set) list.byFamily[family].sets.push(set.name);
      }
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

  private fileSet(file: string): Record<IpFamily, NamedAddressSet | undefined> {
    const known = this.fileSets.get(file);
    if (known) return known;
    let text: string;
    try {
      text = this.readFile(file);
    } catch (err) {
      throw new AddressFileError(`cannot read address file ${file}: ${(err as Error).message}`);
    }
    const parsed = parseAddressFile(file, text);
    const index = this.fileSets.size;
    const sets: Record<IpFamily, NamedAddressSet | undefined> = { 4: undefined, 6: undefined };
    for (const family of [4, 6] as const) {
      const elements = mergeIntervals(parsed[family]).map((i) => intervalElement(family, i));
      if (elements.length > 0) sets[family] = { name: `file${index}_v${family}`, family, file, elements };
    }
    this.fileSets.set(file, sets);
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

/** A named set's definition. Large sets are listed one element per line so nft's errors point at a line. */
export function namedSetDefinition(set: NamedAddressSet): string {
  const body = set.elements.join(',\n      ');
  return `  set ${set.name} {
    type ${addressType(set.family)}; flags interval;
    comment ${quote(`from ${set.file}`.slice(0, 120))}
    elements = {
      ${body}
    }
  }
`;
}
