import type { BuiltTables } from './table-builder.js';

/** Every ArrayBuffer behind the tables, for postMessage's transfer list. */
export function transferList(tables: BuiltTables): ArrayBuffer[] {
  const { domains, urls } = tables;
  const arrays = [
    ...[domains, tables.wildcards, urls.hosts].flatMap((table) => [table.records, table.tags, table.slots]),
    urls.hostStarts,
    urls.paths,
    urls.pathOffsets,
    urls.sets,
  ];
  // each array owns its buffer (built with new/slice, never from Buffer's shared pool)
  return [...new Set(arrays.map((array) => array.buffer as ArrayBuffer))];
}
