import { run } from '../run.js';

/**
 * Thin, well-named wrappers over `ip` for the lab. Every operation that changes
 * something runs INSIDE a moat-* namespace (`ip -n <ns> …`): the host's own
 * network is never touched. `assertLabNamespace` enforces that.
 */

const IP = 'ip';

export function assertLabNamespace(ns: string): void {
  if (!/^moat-[a-z0-9-]+$/.test(ns)) {
    throw new Error(`refusing to operate on namespace '${ns}': lab namespaces are named moat-*`);
  }
}

async function ipIn(ns: string, args: readonly string[]): Promise<string> {
  assertLabNamespace(ns);
  return (await run(IP, ['-n', ns, ...args])).stdout;
}

export async function listNamespaces(): Promise<string[]> {
  const { stdout } = await run(IP, ['-j', 'netns', 'list']);
  if (!stdout.trim()) return [];
  return (JSON.parse(stdout) as { name: string }[]).map((entry) => entry.name);
}

export async function namespaceExists(ns: string): Promise<boolean> {
  return (await listNamespaces()).includes(ns);
}

export async function addNamespace(ns: string): Promise<void> {
  assertLabNamespace(ns);
  await run(IP, ['netns', 'add', ns]);
}

/** Deleting a namespace also deletes the veth ends inside it (and so their peers). */
export async function deleteNamespace(ns: string): Promise<void> {
  assertLabNamespace(ns);
  await run(IP, ['netns', 'delete', ns]);
}

/** PIDs of every process whose network namespace is `ns`. */
export async function namespacePids(ns: string): Promise<number[]> {
  assertLabNamespace(ns);
  const { stdout } = await run(IP, ['netns', 'pids', ns]);
  return stdout
    .split(/\s+/)
    .filter(Boolean)
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

export async function linkExists(ns: string, ifname: string): Promise<boolean> {
  try {
    await ipIn(ns, ['link', 'show', 'dev', ifname]);
    return true;
  } catch {
    return false;
  }
}

/** Creates a veth pair with each end born directly in its namespace (never in the host's). */
export async function addVethPair(
  ns: string,
  ifname: string,
  peerNs: string,
  peerIfname: string,
): Promise<void> {
  assertLabNamespace(peerNs);
  await ipIn(ns, ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', peerIfname, 'netns', peerNs]);
}

export async function deleteLink(ns: string, ifname: string): Promise<void> {
  await ipIn(ns, ['link', 'delete', 'dev', ifname]);
}

export async function setLinkUp(ns: string, ifname: string): Promise<void> {
  await ipIn(ns, ['link', 'set', 'dev', ifname, 'up']);
}

/** Idempotent (`addr replace`). IPv6 addresses skip DAD so they are usable at once. */
export async function ensureAddress(ns: string, ifname: string, cidr: string): Promise<void> {
  const nodad = cidr.includes(':') ? ['nodad'] : [];
  await ipIn(ns, ['addr', 'replace', cidr, 'dev', ifname, ...nodad]);
}

/** Idempotent (`route replace`). `destination` is a prefix or 'default'. */
export async function ensureRoute(ns: string, destination: string, via: string): Promise<void> {
  const family = via.includes(':') ? '-6' : '-4';
  await ipIn(ns, [family, 'route', 'replace', destination, 'via', via]);
}

/** Sets a sysctl inside the namespace only (net.* sysctls are per network namespace). */
export async function setNamespaceSysctl(ns: string, key: string, value: string): Promise<void> {
  assertLabNamespace(ns);
  await run(IP, ['netns', 'exec', ns, 'sysctl', '-q', '-w', `${key}=${value}`]);
}

export interface InterfaceInfo {
  name: string;
  state: string;
  addresses: string[];
}

export async function listInterfaces(ns: string): Promise<InterfaceInfo[]> {
  const stdout = await ipIn(ns, ['-j', 'addr', 'show']);
  const links = JSON.parse(stdout || '[]') as {
    ifname: string;
    operstate: string;
    addr_info?: { local: string; prefixlen: number }[];
  }[];
  return links.map((link) => ({
    name: link.ifname,
    state: link.operstate,
    addresses: (link.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`),
  }));
}

/** The argv prefix that runs a command inside a lab namespace. */
export function execInNamespaceArgv(ns: string, argv: readonly string[]): [string, ...string[]] {
  assertLabNamespace(ns);
  return [IP, 'netns', 'exec', ns, ...argv];
}
