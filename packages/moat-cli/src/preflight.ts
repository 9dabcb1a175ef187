import { CliError } from './errors.js';
import { findOnPath } from './run.js';

/** Checks made before anything starts, so failures come with a next step instead of a stack trace. */

export const isRootUser = (): boolean => process.getuid?.() === 0;

export function requireRoot(isRoot: () => boolean = isRootUser): void {
  if (!isRoot()) {
    throw new CliError('moat lab needs root (network namespaces): run with sudo', {
      hint: 'e.g. sudo env PATH="$PATH" moat lab up   (or use `moat dev`, which needs no root)',
      exitCode: 2,
    });
  }
}

/** Debian package that provides each external tool we shell out to. */
const PACKAGE_OF: Record<string, string> = {
  'nats-server': 'nats-server',
  'redis-server': 'redis-server',
  ip: 'iproute2',
  sysctl: 'procps',
  curl: 'curl',
};

export function requireExecutables(names: readonly string[]): void {
  const missing = names.filter((name) => !findOnPath(name));
  if (missing.length > 0) {
    const packages = [...new Set(missing.map((name) => PACKAGE_OF[name] ?? name))];
    throw new CliError(`not found on PATH: ${missing.join(', ')}`, {
      hint: `install them (apt-get install ${packages.join(' ')}) or fix PATH`,
      exitCode: 2,
    });
  }
}
