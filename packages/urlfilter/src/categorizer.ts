/**
 * The read side: answers "which URL categories is this request in?" from tables built in a
 * worker. Lookups allocate nothing in the common cases (no match, one category set).
 */
import { finishHash, HASH_SEED, hashStep } from './hash.js';
import { hostPrefixToStrip, isIpv4Literal, normaliseHost } from './host.js';
import { emptyKeyTable, KeyTable } from './key-table.js';
import {
  type BuiltTables,
  HAS_CHILDREN,
  type ListFileStats,
  NO_CATEGORIES,
  SET_MASK,
} from './table-builder.js';

/** Size and provenance of a categorizer's tables. */
export interface UrlCategorizerStats {
  /** Distinct entries: domainEntries + urlEntries. */
  entries: number;
  /** Distinct domains (each covers its subdomains). */
  domainEntries: number;
  /** Distinct URL prefixes. */
  urlEntries: number;
  /** Bytes held by the lookup tables. */
  bytes: number;
  /** List lines that were not usable entries (bad characters, a URL in a domains list, ...). */
  skippedLines: number;
  /** Wall time of the build, reading included. */
  buildMs: number;
  /** The list files read. */
  files: readonly ListFileStats[];
}

const EMPTY: readonly string[] = Object.freeze([]);
const DOT = 46;

/** Lowercases an ASCII letter code. */
function lower(code: number): number {
  return code >= 65 && code <= 90 ? code + 32 : code;
}

/**
 * Categorises hosts and URLs against UT1 / squidGuard style lists.
 *
 * - A domain entry matches the domain and all its subdomains, on label boundaries:
 *   `example.com` matches `example.com` and `a.b.example.com`, never `notexample.com`.
 *   A `*.example.com` entry matches subdomains only. IP literal hosts match only an identical
 *   entry.
 * - A URL entry (`host/path`) matches when the host is the same after dropping a leading
 *   `www`/`web`/`ftp` label (with optional digits) on both sides, as squidGuard does, and the
 *   entry's path is a prefix of the request's path + query (case-sensitive). A URL entry without
 *   a path matches every path on that host. Subdomains do not match URL entries.
 */
export class UrlCategorizer {
  /** Policy category names in the order of the sources. */
  readonly categories: readonly string[];
  readonly stats: UrlCategorizerStats;
  /** Domain → category set id. */
  readonly #domains: KeyTable;
  /** `*.parent` entries, keyed by parent → category set id. */
  readonly #wildcards: KeyTable;
  readonly #urlHosts: KeyTable;
  readonly #hostStarts: Uint32Array;
  readonly #paths: Uint8Array;
  readonly #pathOffsets: Uint32Array;
  readonly #urlSets: Uint16Array;
  /** Set id → frozen category names, shared by every result with that set. */
  readonly #setNames: readonly (readonly string[])[];
  readonly #categorySets: readonly (readonly number[])[];
  /** Set ids found by the lookup in progress: #found[0, #foundCount). Reused, never shrunk. */
  readonly #found: number[] = [];
  #foundCount = 0;

  /** A categorizer with no entries: every lookup returns []. */
  static empty(): UrlCategorizer {
    return new UrlCategorizer(
      {
        categories: [],
        categorySets: [],
        domains: emptyKeyTable(),
        wildcards: emptyKeyTable(),
        urls: {
          hosts: emptyKeyTable(),
          hostStarts: new Uint32Array(1),
          paths: new Uint8Array(0),
          pathOffsets: new Uint32Array(1),
          sets: new Uint16Array(0),
        },
        skippedLines: 0,
        files: [],
      },
      0,
    );
  }

  constructor(tables: BuiltTables, buildMs: number) {
    this.categories = Object.freeze([...tables.categories]);
    this.#categorySets = tables.categorySets;
    this.#setNames = tables.categorySets.map((ids) =>
      Object.freeze(ids.map((id) => tables.categories[id] ?? '')),
    );
    this.#domains = new KeyTable(tables.domains);
    this.#wildcards = new KeyTable(tables.wildcards);
    this.#urlHosts = new KeyTable(tables.urls.hosts);
    this.#hostStarts = tables.urls.hostStarts;
    this.#paths = tables.urls.paths;
    this.#pathOffsets = tables.urls.pathOffsets;
    this.#urlSets = tables.urls.sets;
    const urls = tables.urls;
    const bytes =
      this.#domains.byteLength +
      this.#wildcards.byteLength +
      this.#urlHosts.byteLength +
      urls.hostStarts.byteLength +
      urls.paths.byteLength +
      urls.pathOffsets.byteLength +
      urls.sets.byteLength;
    // the domain table's keyless markers are unlisted parents, not entries
    const domainEntries = this.#domains.size + this.#wildcards.size;
    this.stats = Object.freeze({
      entries: domainEntries + urls.sets.length,
      domainEntries,
      urlEntries: urls.sets.length,
      bytes,
      skippedLines: tables.skippedLines,
      buildMs: Math.round(buildMs),
      files: Object.freeze(tables.files.map((file) => Object.freeze({ ...file }))),
    });
  }

  /**
   * The policy categories of a request, in source order; [] when none.
   *
   * @param host - the request host; normalised here (case, trailing dot, `[IPv6]`, `:port`, IDN).
   * @param path - path + query as sent (`/a/b?c`); '' when unknown (a CONNECT without
   *   interception), which leaves only domain entries and URL entries without a path.
   */
  categorize(host: string, path = ''): readonly string[] {
    this.#foundCount = 0;
    let text = host;
    let end = host.length;
    const colon = host.indexOf(':');
    if (host.charCodeAt(0) === 91 || (colon !== -1 && host.indexOf(':', colon + 1) !== -1)) {
      // IPv6, bracketed or not: canonicalise, then only an identical entry matches
      text = normaliseHost(host);
      end = text.length;
      if (end > 0) this.#addDomain(text, 0, end, this.#hashOf(text, end));
    } else {
      if (colon !== -1) end = colon;
      while (end > 0 && host.charCodeAt(end - 1) === DOT) end--;
      if (!this.#findDomains(text, end)) {
        // an internationalised host: look up its punycode form
        this.#foundCount = 0;
        text = normaliseHost(host);
        end = text.length;
        this.#findDomains(text, end);
      }
    }
    if (end === 0) return EMPTY;
    if (this.#urlSets.length > 0) this.#findUrls(host, text, end, path);
    return this.#names();
  }

  /**
   * Adds the sets of every domain entry that is text[0, end) or one of its parent domains.
   * Returns false, having looked up nothing reliable, when the host is not ASCII.
   */
  #findDomains(text: string, end: number): boolean {
    if (isIpv4Literal(text, 0, end)) {
      // IP literals have no parent domains: only an identical entry matches
      this.#addDomain(text, 0, end, this.#hashOf(text, end));
      return true;
    }
    const wildcards = this.#wildcards.size > 0;
    // one pass right to left: at each dot the state is the hash of the suffix after it, so the
    // suffixes are looked up from the TLD down
    let state = HASH_SEED;
    for (let i = end - 1; i >= 0; i--) {
      const code = text.charCodeAt(i);
      if (code === DOT) {
        const hash = finishHash(state);
        const value = this.#domains.find(text, i + 1, end, hash);
        // every parent of an entry is in the table: nothing is listed below an absent suffix
        if (value === -1) return true;
        this.#addSet(value & SET_MASK);
        if (wildcards) this.#addWildcard(text, i + 1, end, hash);
        if ((value & HAS_CHILDREN) === 0) return true;
      } else if (code > 127) {
        return false;
      }
      state = hashStep(state, lower(code));
    }
    if (end > 0) this.#addDomain(text, 0, end, finishHash(state));
    return true;
  }

  #addDomain(text: string, start: number, end: number, hash: number): void {
    const value = this.#domains.find(text, start, end, hash);
    if (value !== -1) this.#addSet(value & SET_MASK);
  }

  #addSet(set: number): void {
    if (set !== NO_CATEGORIES) this.#found[this.#foundCount++] = set;
  }

  /** `*.parent` entries match when text[start, end) is a proper parent of the host. */
  #addWildcard(text: string, start: number, end: number, hash: number): void {
    const set = this.#wildcards.find(text, start, end, hash);
    if (set !== -1) this.#addSet(set);
  }

  /** Adds the sets of the URL entries for the host (www-stripped) whose path prefixes `path`. */
  #findUrls(rawHost: string, text: string, end: number, path: string): void {
    let hostStart = hostPrefixToStrip(text, 0, end);
    let hash = this.#hashOf(text, end, hostStart);
    if (hash === -1) {
      // an internationalised host the domain walk did not need to convert
      text = normaliseHost(rawHost);
      hostStart = hostPrefixToStrip(text);
      hash = this.#hashOf(text, text.length, hostStart);
      end = text.length;
    }
    const host = this.#urlHosts.find(text, hostStart, end, hash);
    if (host === -1) return;
    const paths = this.#paths;
    const offsets = this.#pathOffsets;
    for (let entry = this.#hostStarts[host], last = this.#hostStarts[host + 1]; entry < last; entry++) {
      const from = offsets[entry];
      const length = offsets[entry + 1] - from;
      if (length > path.length) continue;
      let i = 0;
      while (i < length && path.charCodeAt(i) === paths[from + i]) i++;
      if (i === length) this.#found[this.#foundCount++] = this.#urlSets[entry];
    }
  }

  /** The hash of text[start, end), or -1 when it is not ASCII. */
  #hashOf(text: string, end: number, start = 0): number {
    let state = HASH_SEED;
    for (let i = end - 1; i >= start; i--) {
      const code = text.charCodeAt(i);
      if (code > 127) return -1;
      state = hashStep(state, lower(code));
    }
    return finishHash(state);
  }

  /** Category names for the found set ids: a shared frozen array unless several sets matched. */
  #names(): readonly string[] {
    const found = this.#found;
    const count = this.#foundCount;
    if (count === 0) return EMPTY;
    const first = found[0];
    let same = true;
    for (let i = 1; i < count; i++) if (found[i] !== first) same = false;
    if (same) return this.#setNames[first] ?? EMPTY;
    const ids = new Set<number>();
    for (let i = 0; i < count; i++) for (const id of this.#categorySets[found[i]] ?? []) ids.add(id);
    return Object.freeze([...ids].sort((a, b) => a - b).map((id) => this.categories[id] ?? ''));
  }
}
