/**
 * Keeps the proxy's current categorizer and swaps in a new one when the policy's URL categories
 * or their list files change. Builds run in a worker; until one finishes, lookups use the
 * previous tables, and a failed build leaves them in place.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildCategorizer } from './build.js';
import { UrlCategorizer, type UrlCategorizerStats } from './categorizer.js';
import { type CategorySource, LIST_KINDS, listDirectories } from './sources.js';

/** Options for {@link UrlListManager}. */
export interface UrlListManagerOptions {
  /** Called after a new categorizer is in use, with its stats. */
  onReload?: (stats: UrlCategorizerStats) => void;
}

/**
 * Holds the current {@link UrlCategorizer}.
 *
 * - {@link update} with the policy's categories rebuilds only when they differ (deep compare)
 *   from the last build, or when a list file's size, mtime or inode changed.
 * - {@link checkForChanges} stats the list files and rebuilds when one changed; call it on a
 *   timer and on SIGHUP.
 * - Calls are serialised; while a build runs, {@link categorize} answers from the previous tables.
 * - A failed build rejects with the error (a {@link UrlListError} naming the path for list
 *   problems), keeps the previous categorizer, and is not retried until the sources or the files
 *   change; {@link lastError} holds it until a build succeeds.
 */
export class UrlListManager {
  #current = UrlCategorizer.empty();
  #sources: CategorySource[] = [];
  #sourcesKey = '[]';
  /** Sources and file fingerprint of the last build attempt, successful or not. */
  #attempted: string | undefined;
  #lastError: Error | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #onReload: ((stats: UrlCategorizerStats) => void) | undefined;

  constructor(options: UrlListManagerOptions = {}) {
    this.#onReload = options.onReload;
  }

  /** The categorizer in use (replaced, never mutated, on reload). */
  get categorizer(): UrlCategorizer {
    return this.#current;
  }

  /** Stats of the categorizer in use. */
  get stats(): UrlCategorizerStats {
    return this.#current.stats;
  }

  /** The error of the last build if it failed; undefined once a build succeeds. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** Categories of a request from the categorizer in use; see {@link UrlCategorizer.categorize}. */
  categorize(host: string, path = ''): readonly string[] {
    return this.#current.categorize(host, path);
  }

  /**
   * Uses these URL categories from now on. Resolves true when it rebuilt, false when nothing
   * changed; rejects when the build fails (the previous categorizer stays).
   */
  update(sources: readonly CategorySource[]): Promise<boolean> {
    return this.#enqueue(() => {
      this.#sources = structuredClone([...sources]);
      this.#sourcesKey = stableJson(this.#sources);
      return this.#rebuildIfChanged();
    });
  }

  /** Rebuilds when a list file changed since the last build. Resolves true when it rebuilt. */
  checkForChanges(): Promise<boolean> {
    return this.#enqueue(() => this.#rebuildIfChanged());
  }

  #enqueue(task: () => Promise<boolean>): Promise<boolean> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #rebuildIfChanged(): Promise<boolean> {
    // fingerprint before reading: a file changed during the build differs at the next check
    const attempt = `${this.#sourcesKey}\n${await fingerprint(this.#sources)}`;
    if (attempt === this.#attempted) return false;
    this.#attempted = attempt;
    try {
      this.#current = await buildCategorizer(this.#sources);
    } catch (error) {
      this.#lastError = error as Error;
      throw error;
    }
    this.#lastError = undefined;
    this.#onReload?.(this.#current.stats);
    return true;
  }
}

/**
 * Size, mtime and inode of every list file the sources may read ("missing" for absent ones, so
 * that a list appearing later is a change too). Bad sources fingerprint as their error, and the
 * build then reports it.
 */
async function fingerprint(sources: readonly CategorySource[]): Promise<string> {
  let directories: string[];
  try {
    directories = listDirectories(sources).map(({ directory }) => directory);
  } catch (error) {
    return `invalid: ${(error as Error).message}`;
  }
  const paths = [...new Set(directories)].flatMap((directory) => [
    directory,
    ...LIST_KINDS.map((kind) => join(directory, kind)),
  ]);
  const states = await Promise.all(
    paths.map(async (path) => {
      try {
        const info = await stat(path);
        // a directory's own mtime moves with any file in it; only whether it exists matters
        if (info.isDirectory()) return `${path} directory`;
        return `${path} ${info.ino} ${info.size} ${info.mtimeMs}`;
      } catch (error) {
        return `${path} ${(error as NodeJS.ErrnoException).code ?? 'error'}`;
      }
    }),
  );
  return states.join('\n');
}

/** JSON with object keys sorted, so equal sources compare equal whatever their key order. */
function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner !== null && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(
          Object.entries(inner)
            .filter(([, v]) => v !== undefined)
            .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
        )
      : inner,
  );
}
