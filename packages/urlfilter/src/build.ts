/**
 * Builds a categorizer in a worker thread: reading and packing millions of entries takes seconds
 * of CPU, which must not stall the proxy's event loop.
 */
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { UrlCategorizer } from './categorizer.js';
import { deserialiseBuildError, type SerialisedBuildError } from './errors.js';
import type { CategorySource } from './sources.js';
import type { BuiltTables } from './table-builder.js';

type WorkerReply = { ok: true; tables: BuiltTables } | { ok: false; error: SerialisedBuildError };

/**
 * Builds a {@link UrlCategorizer} from policy URL categories, reading list directories in a
 * worker thread. Rejects with a {@link UrlListError} naming the path when a list directory is
 * missing or a file cannot be read.
 */
export async function buildCategorizer(sources: readonly CategorySource[]): Promise<UrlCategorizer> {
  const started = performance.now();
  const tables = await buildInWorker(plainSources(sources));
  return new UrlCategorizer(tables, performance.now() - started);
}

function buildInWorker(sources: CategorySource[]): Promise<BuiltTables> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./build-worker.js', import.meta.url), { workerData: { sources } });
    let settled = false;
    worker.once('message', (reply: WorkerReply) => {
      settled = true;
      if (reply.ok) resolve(reply.tables);
      else reject(deserialiseBuildError(reply.error));
    });
    worker.once('error', (error) => {
      settled = true;
      reject(new Error(`the URL list build worker failed: ${error.message}`, { cause: error }));
    });
    worker.once('exit', (code) => {
      if (!settled) reject(new Error(`the URL list build worker exited with code ${code} before replying`));
    });
  });
}

/** Copies the fields a worker needs (sources may be frozen or carry extra policy fields). */
function plainSources(sources: readonly CategorySource[]): CategorySource[] {
  return sources.map(({ name, source, categories, domains, urls }) => ({
    name,
    ...(source === undefined ? {} : { source }),
    ...(categories === undefined ? {} : { categories: [...categories] }),
    ...(domains === undefined ? {} : { domains: [...domains] }),
    ...(urls === undefined ? {} : { urls: [...urls] }),
  }));
}
