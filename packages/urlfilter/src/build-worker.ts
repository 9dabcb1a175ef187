/**
 * Worker entry: builds the tables for workerData.sources and posts them back with their
 * ArrayBuffers transferred (moved, not copied). Errors come back as plain fields.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { serialiseBuildError } from './errors.js';
import type { CategorySource } from './sources.js';
import { buildTables } from './table-builder.js';
import { transferList } from './transfer.js';

const { sources } = workerData as { sources: CategorySource[] };
try {
  const tables = buildTables(sources);
  parentPort?.postMessage({ ok: true, tables }, transferList(tables));
} catch (error) {
  parentPort?.postMessage({ ok: false, error: serialiseBuildError(error) });
}
