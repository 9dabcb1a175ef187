/**
 * Builds the lookup tables from category sources: reads the list files, normalises and
 * deduplicates entries, and packs them into typed arrays that can be transferred from the build
 * worker without copying. Synchronous and CPU-bound: run it in a worker (see build-worker.ts).
 */
import { lstatSync, type Stats, statSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import { CategorySetInterner } from './category-sets.js';
import { UrlListError } from './errors.js';
import { hostPrefixToStrip } from './host.js';
import { KeyTableBuilder, type KeyTableData } from './key-table.js';
import { readLines } from './line-reader.js';
import { entryToken, JUNK, normaliseDomain, normaliseUrl } from './list-entry.js';
import { type CategorySource, LIST_KINDS, type ListKind, listDirectories } from './sources.js';

/** One list file that was read. */
export interface ListFileStats {
  path: string;
  mtimeMs: number;
  size: number;
  /** Valid entries in the file (before removing duplicates). */
  entries: number;
}

/** The URL-prefix table: exact (www-stripped) hosts, each with a run of path prefixes. */
export interface UrlTableData {
  /** Host (www-stripped) → host number i. */
  hosts: KeyTableData;
  /** Host i's prefixes are entries hostStarts[i] .. hostStarts[i + 1] - 1. */
  hostStarts: Uint32Array;
  /** Path prefix bytes ('' matches every path), back to back. */
  paths: Uint8Array;
  pathOffsets: Uint32Array;
  /** Category set id per entry. */
  sets: Uint16Array;
}

/** Everything a categorizer needs; all arrays are transferable. */
export interface BuiltTables {
  /** Policy category names; a category id indexes this. */
  categories: string[];
  /** Category set id → category ids. */
  categorySets: number[][];
  /** Domain → category set id and HAS_CHILDREN (see SET_MASK); unlisted parents are keyless markers. */
  domains: KeyTableData;
  /** `*.example.com` entries (subdomains only), keyed without the `*.` → category set id. */
  wildcards: KeyTableData;
  urls: UrlTableData;
  skippedLines: number;
  files: ListFileStats[];
}

/**
 * Domain table values: the category set id in the low 16 bits, and HAS_CHILDREN when some entry
 * lies below the domain. Every parent of an entry is in the table (with no categories when it is
 * not listed itself), so a lookup walking up from the TLD stops at the first suffix that is
 * absent or has no children: most lookups read one or two slots instead of one per label.
 */
export const SET_MASK = 0xffff;
export const HAS_CHILDREN = 0x10000;
/** The category set id of parents that are not listed themselves: the empty set, interned first. */
export const NO_CATEGORIES = 0;

/** A list file to read, and the category set its entries get. */
interface ListFile {
  kind: ListKind;
  path: string;
  size: number;
  category: string;
  setId: number;
}

/**
 * Average bytes per line, to size tables before reading; a wrong guess only costs a rehash or
 * some memory. Domain lines count a little short to leave room for unlisted parents.
 */
const DOMAIN_LINE_BYTES = 12;
const URL_LINE_BYTES = 40;

/** The longest line kept; longer `urls` lines are skipped as junk. */
const MAX_ENTRY = 8192;

class TablesBuilder {
  readonly categories: string[] = [];
  readonly #categoryIds = new Map<string, number>();
  readonly sets = new CategorySetInterner();
  readonly domains = new KeyTableBuilder('domains');
  readonly wildcards = new KeyTableBuilder('wildcard domains');
  readonly urls = new KeyTableBuilder('URL prefixes');
  readonly files: ListFileStats[] = [];
  skippedLines = 0;
  readonly #scratch = new Uint8Array(MAX_ENTRY + 16);

  categoryId(name: string): number {
    let id = this.#categoryIds.get(name);
    if (id === undefined) {
      id = this.categories.length;
      this.categories.push(name);
      this.#categoryIds.set(name, id);
    }
    return id;
  }

  /** Adds the entry in line[start, end); returns false when the line was skipped as junk. */
  addLine(kind: ListKind, line: Uint8Array, start: number, end: number, setId: number): boolean | undefined {
    const token = entryToken(line, start, end);
    if (token === undefined) return undefined;
    if (token === JUNK || token[1] - token[0] > MAX_ENTRY) {
      this.skippedLines++;
      return false;
    }
    const added = kind === 'domains' ? this.#addDomain(line, token, setId) : this.#addUrl(line, token, setId);
    if (!added) this.skippedLines++;
    return added;
  }

  /** Adds an inline entry from the policy. */
  addText(kind: ListKind, text: string, setId: number): void {
    const bytes = Buffer.from(text, 'utf8');
    this.addLine(kind, bytes, 0, bytes.length, setId);
  }

  #addDomain(line: Uint8Array, [start, end]: [number, number], setId: number): boolean {
    // "*.example.com": subdomains only, kept in a table of their own
    const wildcard = line[start] === 42 && line[start + 1] === 46;
    const length = normaliseDomain(line, wildcard ? start + 2 : start, end, this.#scratch);
    if (length === JUNK) return false;
    const table = wildcard ? this.wildcards : this.domains;
    this.#merge(table, table.insert(this.#scratch, 0, length), setId);
    if (!isIpv4Bytes(this.#scratch, length)) this.#markParents(length, wildcard);
    return true;
  }

  /**
   * Puts the parents of the domain in scratch[0, length) into the domain table with HAS_CHILDREN,
   * and the domain itself for a wildcard (whose matches lie below it).
   */
  #markParents(length: number, wildcard: boolean): void {
    const scratch = this.#scratch;
    const domains = this.domains;
    for (
      let from = wildcard ? 0 : nextLabel(scratch, 0, length);
      from !== -1;
      from = nextLabel(scratch, from, length)
    ) {
      const record = domains.insert(scratch, from, length - from);
      if (domains.added) {
        domains.setValue(record, NO_CATEGORIES | HAS_CHILDREN);
        continue;
      }
      const value = domains.valueAt(record);
      // a parent already marked has its own parents marked too
      if ((value & HAS_CHILDREN) !== 0) return;
      domains.setValue(record, value | HAS_CHILDREN);
    }
  }

  #addUrl(line: Uint8Array, [start, end]: [number, number], setId: number): boolean {
    const scratch = this.#scratch;
    const url = normaliseUrl(line, start, end, scratch);
    if (url === JUNK) return false;
    const host = Buffer.from(scratch.buffer, scratch.byteOffset, url.hostLength).toString('latin1');
    const strip = hostPrefixToStrip(host);
    this.#merge(this.urls, this.urls.insert(scratch, strip, url.length - strip), setId);
    return true;
  }

  #merge(table: KeyTableBuilder, record: number, setId: number): void {
    if (table.added) {
      table.setValue(record, setId);
      return;
    }
    const value = table.valueAt(record);
    table.setValue(record, this.sets.union(value & SET_MASK, setId) | (value & HAS_CHILDREN));
  }

  /** Sizes the tables for the files up front, so they do not grow and rehash repeatedly. */
  reserve(files: readonly ListFile[]): void {
    const bytes = (kind: ListKind) =>
      files.reduce((sum, file) => sum + (file.kind === kind ? file.size : 0), 0);
    this.domains.reserve(Math.ceil(bytes('domains') / DOMAIN_LINE_BYTES), bytes('domains'));
    this.urls.reserve(Math.ceil(bytes('urls') / URL_LINE_BYTES), bytes('urls'));
  }

  readFile(kind: ListKind, path: string, category: string, setId: number): void {
    let entries = 0;
    try {
      const info = readLines(path, (line, start, end) => {
        if (this.addLine(kind, line, start, end, setId)) entries++;
      });
      this.files.push({ path, mtimeMs: info.mtimeMs, size: info.size, entries });
    } catch (error) {
      if (error instanceof RangeError) throw new UrlListError(`${path}: ${error.message}`, category, path);
      throw unreadable(path, category, error);
    }
  }

  finishUrls(): UrlTableData {
    const urls = this.urls;
    const count = urls.count;
    const records = urls.records;
    // every prefix: where its key starts, how long its host and whole key are, its host number
    const keyStart = new Uint32Array(count);
    const keyLength = new Uint16Array(count);
    const hostLength = new Uint16Array(count);
    const hostOf = new Uint32Array(count);
    const sets = new Uint16Array(count);
    const hosts = new KeyTableBuilder('URL hosts');
    let entry = 0;
    urls.forEach((record, start, length) => {
      let slash = start;
      while (slash < start + length && records[slash] !== 47) slash++;
      const hostRecord = hosts.insert(records, start, slash - start);
      if (hosts.added) hosts.setValue(hostRecord, hosts.count - 1);
      keyStart[entry] = start;
      keyLength[entry] = length;
      hostLength[entry] = slash - start;
      hostOf[entry] = hosts.valueAt(hostRecord);
      sets[entry] = urls.valueAt(record);
      entry++;
    });
    // group the prefixes by host (a counting sort) so a lookup scans only its host's run
    const hostCount = hosts.count;
    const hostStarts = new Uint32Array(hostCount + 1);
    for (let i = 0; i < count; i++) hostStarts[hostOf[i] + 1]++;
    for (let h = 0; h < hostCount; h++) hostStarts[h + 1] += hostStarts[h];
    const next = hostStarts.slice(0, hostCount);
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[next[hostOf[i]]++] = i;
    let pathBytes = 0;
    for (let i = 0; i < count; i++) pathBytes += keyLength[i] - hostLength[i];
    const paths = new Uint8Array(pathBytes);
    const pathOffsets = new Uint32Array(count + 1);
    const groupedSets = new Uint16Array(count);
    let at = 0;
    for (let slot = 0; slot < count; slot++) {
      const i = order[slot];
      const from = keyStart[i] + hostLength[i];
      const to = keyStart[i] + keyLength[i];
      paths.set(records.subarray(from, to), at);
      at += to - from;
      pathOffsets[slot + 1] = at;
      groupedSets[slot] = sets[i];
    }
    return { hosts: hosts.finish(), hostStarts, paths, pathOffsets, sets: groupedSets };
  }
}

/** Builds the tables; throws {@link UrlListError} naming the path for a missing or unreadable list. */
export function buildTables(sources: readonly CategorySource[]): BuiltTables {
  const builder = new TablesBuilder();
  for (const source of sources) {
    const setId = builder.sets.idOf([builder.categoryId(source.name)]);
    for (const domain of source.domains ?? []) builder.addText('domains', domain, setId);
    for (const url of source.urls ?? []) builder.addText('urls', url, setId);
  }
  const files = listFiles(sources, builder);
  builder.reserve(files);
  for (const { kind, path, category, setId } of files) builder.readFile(kind, path, category, setId);
  return {
    categories: builder.categories,
    categorySets: builder.sets.sets,
    domains: builder.domains.finish(NO_CATEGORIES | HAS_CHILDREN),
    wildcards: builder.wildcards.finish(),
    urls: builder.finishUrls(),
    skippedLines: builder.skippedLines,
    files: builder.files,
  };
}

/**
 * The list files to read, each once: when several policy categories use the same directory, its
 * entries get the set of all of them. Missing directories are errors; a directory may lack either
 * file (UT1 categories often have no `urls`) but not both.
 */
function listFiles(sources: readonly CategorySource[], builder: TablesBuilder): ListFile[] {
  const byDirectory = new Map<string, { category: string; ids: number[] }>();
  for (const { category, directory } of listDirectories(sources)) {
    const known = byDirectory.get(directory);
    if (known === undefined) byDirectory.set(directory, { category, ids: [builder.categoryId(category)] });
    else known.ids.push(builder.categoryId(category));
  }
  const files: ListFile[] = [];
  for (const [directory, { category, ids }] of byDirectory) {
    checkDirectory(directory, category);
    const present = LIST_KINDS.flatMap((kind) => {
      const path = join(directory, kind);
      const size = listFileSize(path, category);
      return size === undefined ? [] : [{ kind, path, size }];
    });
    if (present.length === 0) {
      throw new UrlListError(
        `URL category "${category}": ${directory} has neither a "domains" nor a "urls" file. ` +
          'Point source/categories at a UT1 or squidGuard category directory.',
        category,
        directory,
        'ENOENT',
      );
    }
    const setId = builder.sets.idOf(ids);
    for (const file of present) files.push({ ...file, category, setId });
  }
  return files;
}

/** Where the label after the one starting at `from` starts in bytes[0, length), or -1. */
function nextLabel(bytes: Uint8Array, from: number, length: number): number {
  const dot = bytes.indexOf(46, from);
  return dot === -1 || dot >= length ? -1 : dot + 1;
}

/**
 * True for an IPv4 literal in bytes[0, length), which has no parent domains to mark. (IPv6
 * literals have no dots, so they have no parents either.)
 */
function isIpv4Bytes(bytes: Uint8Array, length: number): boolean {
  const last = bytes[length - 1];
  // host names end in a letter, so most entries stop here
  if (last < 48 || last > 57) return false;
  return isIPv4(Buffer.from(bytes.buffer, bytes.byteOffset, length).toString('latin1'));
}

function checkDirectory(directory: string, category: string): void {
  let isDirectory = false;
  let code: string | undefined;
  try {
    isDirectory = statSync(directory).isDirectory();
  } catch (error) {
    code = (error as NodeJS.ErrnoException).code;
  }
  if (isDirectory) return;
  const problem =
    code === undefined
      ? 'is not a directory'
      : code === 'ENOENT'
        ? 'does not exist'
        : `cannot be read (${code})`;
  throw new UrlListError(
    `URL category "${category}": list directory ${directory} ${problem}. ` +
      'Check objects.urlCategories source and categories, and that the lists are installed there ' +
      '(e.g. unpack the UT1 blacklists into source).',
    category,
    directory,
    code ?? 'ENOTDIR',
  );
}

/** The file's size; undefined when there is no such file; throws when it cannot be read as a list. */
function listFileSize(path: string, category: string): number | undefined {
  try {
    lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unreadable(path, category, error);
  }
  let info: Stats;
  try {
    info = statSync(path);
  } catch (error) {
    // present but unusable, e.g. a dangling symlink
    throw unreadable(path, category, error);
  }
  if (!info.isFile()) {
    throw new UrlListError(
      `URL category "${category}": ${path} is not a regular file. A list directory holds "domains" and "urls" files.`,
      category,
      path,
      'EISDIR',
    );
  }
  return info.size;
}

function unreadable(path: string, category: string, error: unknown): UrlListError {
  const code = (error as NodeJS.ErrnoException).code;
  return new UrlListError(
    `URL category "${category}": cannot read ${path} (${code ?? String(error)}). ` +
      'Check that the file exists and is readable by the proxy user.',
    category,
    path,
    code,
    { cause: error },
  );
}
