import { fileURLToPath } from 'node:url';

/**
 * The repository root, found from this file's place in the workspace
 * (packages/moat-cli/dist/paths.js → ../../..). Services are started from here.
 */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../../', import.meta.url));
}

/** A file inside this package's dist/ (for the helper entry points we run with node). */
export function distFile(relative: string): string {
  return fileURLToPath(new URL(relative, import.meta.url));
}
