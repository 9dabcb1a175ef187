/** Test helpers: temporary list trees in the UT1 layout. Not exported from the package. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A temporary UT1-style tree; `remove()` deletes it. */
export interface ListTree {
  root: string;
  /** Writes <root>/<category>/<kind> (creating the category directory). */
  write(category: string, kind: 'domains' | 'urls', text: string): string;
  remove(): void;
}

export function listTree(): ListTree {
  const root = mkdtempSync(join(tmpdir(), 'moat-urlfilter-test-'));
  return {
    root,
    write(category, kind, text) {
      mkdirSync(join(root, category), { recursive: true });
      const path = join(root, category, kind);
      writeFileSync(path, text);
      return path;
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
