/**
 * Builds the lookup tables from category sources: reads the list files, normalises and
 * deduplicates entries, and packs them into typed arrays that can be transferred from the build
 * worker without copying. Synchronous and CPU-bound: run it in a worker (see build-worker.ts).
 */
import { lstatSync, statSync } from 'node:fs';
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
  /** Domain → category set id. */
  domains: KeyTableData;
  /** `*.example.com` entries (subdomains only), keyed without the `*.` → category set id. */
  wildcards: KeyTableData;
  urls: UrlTableData;
  skippedLines: number;
  files: ListFileStats[];
}

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
    return true;
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
    table.setValue(record, table.added ? setId : this.sets.union(table.valueAt(record), setId));
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
  for (const { kind, path, category, setId } of listFiles(sources, builder)) {
    builder.readFile(kind, path, category, setId);
  }
  return {
    categories: builder.categories,
    categorySets: builder.sets.sets,
    domains: builder.domains.finish(),
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
function listFiles(
  sources: readonly CategorySource[],
  builder: TablesBuilder,
): { kind: ListKind; path: string; category: string; setId: number }[] {
  const byDirectory = new Map<string, { category: string; ids: number[] }>();
  for (const { category, directory } of listDirectories(sources)) {
    const known = byDirectory.get(directory);
    if (known === undefined) byDirectory.set(directory, { category, ids: [builder.categoryId(category)] });
    else known.ids.push(builder.categoryId(category));
  }
  const files: { kind: ListKind; path: string; category: string; setId: number }[] = [];
  for (const [directory, { category, ids }] of byDirectory) {
    checkDirectory(directory, category);
    const present = LIST_KINDS.filter((kind) => isListFile(join(directory, kind), category));
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
    for (const kind of present) files.push({ kind, path: join(directory, kind), category, setId });
  }
  return files;
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

/** False when there is no such file; throws when there is one that cannot be read as a list. */
function isListFile(path: string, category: string): boolean {
  try {
    lstatSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw unreadable(path, category, error);
  }
  let isFile: boolean;
  try {
    isFile = statSync(path).isFile();
  } catch (error) {
    // present but unusable, e.g. a dangling symlink
    throw unreadable(path, category, error);
  }
  if (!isFile) {
    throw new UrlListError(
      `URL category "${category}": ${path} is not a regular file. A list directory holds "domains" and "urls" files.`,
      category,
      path,
      'EISDIR',
    );
  }
  return true;
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
