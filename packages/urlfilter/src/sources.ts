/**
 * What a URL category is built from, and where its list files live (UT1 / squidGuard layout:
 * `<source>/<category>/domains` and `<source>/<category>/urls`).
 */
import { isAbsolute, join } from 'node:path';
import { UrlListError } from './errors.js';

/**
 * One policy URL category (`objects.urlCategories.<name>`). Lookups report `name`.
 *
 * - `source` + `categories`: list directories `<source>/<category>` (UT1 / squidGuard layout),
 *   each holding a `domains` and/or a `urls` file.
 * - `source` alone: `source` itself is the list directory.
 * - `domains`: inline domains (subdomains included), `urls`: inline URL prefixes (`host/path`).
 */
export interface CategorySource {
  name: string;
  source?: string;
  categories?: readonly string[];
  domains?: readonly string[];
  urls?: readonly string[];
}

/** The kinds of list file in a list directory. */
export type ListKind = 'domains' | 'urls';
export const LIST_KINDS: readonly ListKind[] = ['domains', 'urls'];

/** A list directory and the policy category it feeds. */
export interface ListDirectory {
  category: string;
  directory: string;
}

const CATEGORY_DIR = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** The list directories of the sources, in order; throws {@link UrlListError} for a bad source. */
export function listDirectories(sources: readonly CategorySource[]): ListDirectory[] {
  const directories: ListDirectory[] = [];
  for (const source of sources) {
    if (source.categories !== undefined && source.source === undefined) {
      throw new UrlListError(
        `URL category "${source.name}": "categories" names directories under "source", but no source is set. ` +
          'Set source to the list directory (e.g. /var/lib/moat/urllists/ut1) or drop categories.',
        source.name,
      );
    }
    if (source.source === undefined) continue;
    if (!isAbsolute(source.source)) {
      throw new UrlListError(
        `URL category "${source.name}": source "${source.source}" must be an absolute path.`,
        source.name,
        source.source,
      );
    }
    if (source.categories === undefined) {
      directories.push({ category: source.name, directory: source.source });
      continue;
    }
    for (const dir of source.categories) {
      if (!CATEGORY_DIR.test(dir) || dir === '..') {
        throw new UrlListError(
          `URL category "${source.name}": "${dir}" is not a category directory name (use names like "adult").`,
          source.name,
          join(source.source, dir),
        );
      }
      directories.push({ category: source.name, directory: join(source.source, dir) });
    }
  }
  return directories;
}
