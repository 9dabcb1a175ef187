import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BAD_TLS_VARIANTS, badTlsHost } from './bad-tls.js';
import { assertLabNamespace } from './netns.js';
import { LAB_ADDRESSES, LAB_HOSTNAMES, LAB_NAMESPACES, type LabNamespace } from './topology.js';

/**
 * Lab host names without DNS: `ip netns exec <ns>` bind-mounts every file in
 * /etc/netns/<ns>/ over /etc/ for the processes it starts, so a hosts file
 * there gives each lab namespace its own /etc/hosts. The host's /etc/hosts is
 * never touched. A marker line tells our files apart from anyone else's.
 */

export const ETC_NETNS = '/etc/netns';
const MARKER = '# Written by `moat lab up`; `moat lab down` removes it.';

export const labHostsFile = (ns: LabNamespace, etcNetns = ETC_NETNS) => join(etcNetns, ns, 'hosts');

export function renderLabHosts(ns: LabNamespace, ipv6: boolean): string {
  const names = LAB_HOSTNAMES.join(' ');
  return [
    MARKER,
    `# Network namespace ${ns}: lab names → the origin server in moat-wan.`,
    '127.0.0.1\tlocalhost',
    ...(ipv6 ? ['::1\tlocalhost ip6-localhost ip6-loopback'] : []),
    `${LAB_ADDRESSES.origin}\t${names}`,
    ...(ipv6 ? [`${LAB_ADDRESSES.origin6}\t${names}`] : []),
    '# The bad-certificate servers (bad-tls.ts), one address each.',
    ...BAD_TLS_VARIANTS.map((variant) => `${variant.address}\t${badTlsHost(variant)}`),
    '',
  ].join('\n');
}

export interface HostsOutcome {
  /** Directories this call created (to be removed by `down` when empty). */
  createdDirs: string[];
  /** Namespaces whose hosts file someone else wrote: left alone. */
  foreign: LabNamespace[];
}

/** Writes (or refreshes) our hosts file for every lab namespace. Idempotent. */
export function writeLabHosts(etcNetns = ETC_NETNS): HostsOutcome {
  const ipv6 = existsSync('/proc/sys/net/ipv6');
  const createdDirs: string[] = [];
  const foreign: LabNamespace[] = [];
  const ensureDir = (dir: string) => {
    if (existsSync(dir)) return;
    mkdirSync(dir, { mode: 0o755 });
    createdDirs.push(dir);
  };
  ensureDir(etcNetns);
  for (const ns of Object.values(LAB_NAMESPACES)) {
    assertLabNamespace(ns);
    ensureDir(join(etcNetns, ns));
    const file = labHostsFile(ns, etcNetns);
    if (existsSync(file) && !isOurs(file)) {
      foreign.push(ns);
      continue;
    }
    writeFileSync(file, renderLabHosts(ns, ipv6), { mode: 0o644 });
  }
  return { createdDirs, foreign };
}

/**
 * Removes our hosts files (by marker, so also after a reboot lost the state), then the
 * directories `up` created, deepest first, if nothing else lives in them. Returns what it removed.
 */
export function removeLabHosts(createdDirs: readonly string[], etcNetns = ETC_NETNS): string[] {
  const removed: string[] = [];
  for (const ns of Object.values(LAB_NAMESPACES)) {
    const file = labHostsFile(ns, etcNetns);
    if (existsSync(file) && isOurs(file)) {
      rmSync(file);
      removed.push(file);
    }
  }
  for (const dir of [...createdDirs].sort((a, b) => b.length - a.length)) {
    if (!dir.startsWith(etcNetns) || !existsSync(dir) || readdirSync(dir).length > 0) continue;
    rmdirSync(dir);
    removed.push(dir);
  }
  return removed;
}

function isOurs(file: string): boolean {
  try {
    return readFileSync(file, 'utf8').startsWith(MARKER);
  } catch {
    return false;
  }
}
