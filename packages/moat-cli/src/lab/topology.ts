import { existsSync } from 'node:fs';
import { BAD_TLS_VARIANTS } from './bad-tls.js';
import {
  addNamespace,
  addVethPair,
  deleteLink,
  ensureAddress,
  ensureRoute,
  linkExists,
  listNamespaces,
  setLinkUp,
  setNamespaceSysctl,
} from './netns.js';

/**
 * The lab's network, as data. Everything lives inside our namespaces:
 *
 *   moat-lan [eth0 10.70.1.10] ── [lan0 10.70.1.1] moat-gw [wan0 203.0.113.1] ── [gw0 203.0.113.2] moat-wan
 *                                                                        moat-wan [remote0 198.51.100.1] ── [eth0 198.51.100.2] moat-remote
 *   moat-wan also owns the "internet servers" address 192.0.2.10 on lo.
 *
 * Addresses are documentation/test ranges (RFC 5737) and ULA, never routable outside.
 */

export const LAB_NAMESPACES = {
  lan: 'moat-lan',
  gw: 'moat-gw',
  wan: 'moat-wan',
  remote: 'moat-remote',
} as const;

export type LabRole = keyof typeof LAB_NAMESPACES;
export type LabNamespace = (typeof LAB_NAMESPACES)[LabRole];

/** Well-known lab addresses (without prefix length), for tests and later services. */
export const LAB_ADDRESSES = {
  lanClient: '10.70.1.10',
  gwLan: '10.70.1.1',
  gwWan: '203.0.113.1',
  wanGw: '203.0.113.2',
  wanRemote: '198.51.100.1',
  remoteClient: '198.51.100.2',
  origin: '192.0.2.10',
  lanClient6: 'fd00:70:1::10',
  gwLan6: 'fd00:70:1::1',
  gwWan6: 'fd00:70:113::1',
  wanGw6: 'fd00:70:113::2',
  wanRemote6: 'fd00:70:100::1',
  remoteClient6: 'fd00:70:100::2',
  origin6: 'fd00:70:2::10',
} as const;

/**
 * Names every lab namespace resolves to the origin (192.0.2.10, fd00:70:2::10) through its own
 * /etc/netns/<ns>/hosts, and that the origin's lab certificate covers. Tests pick names by role:
 * allowed, casino/poker (gambling category), blocked, malware, bank (TLS bypass), pinned.
 */
export const LAB_HOSTNAMES = [
  'origin.test',
  'www.origin.test',
  'allowed.test',
  'casino.test',
  'www.casino.test',
  'poker.test',
  'blocked.test',
  'www.malware.test',
  'bank.test',
  'www.pinned.test',
] as const;

export const LAB_PREFIXES = {
  lan: '10.70.1.0/24',
  wanLink: '203.0.113.0/24',
  remoteLink: '198.51.100.0/24',
  lan6: 'fd00:70:1::/64',
  wanLink6: 'fd00:70:113::/64',
  remoteLink6: 'fd00:70:100::/64',
} as const;

/** Interface names inside moat-gw (the firewall binds zones to these). */
export const GW_INTERFACES = { lan: 'lan0', wan: 'wan0' } as const;

interface LinkEnd {
  ns: LabNamespace;
  ifname: string;
  addresses: string[];
}

export interface LabLink {
  a: LinkEnd;
  b: LinkEnd;
}

const A = LAB_ADDRESSES;
const N = LAB_NAMESPACES;

export const LAB_LINKS: readonly LabLink[] = [
  {
    a: { ns: N.lan, ifname: 'eth0', addresses: [`${A.lanClient}/24`, `${A.lanClient6}/64`] },
    b: { ns: N.gw, ifname: GW_INTERFACES.lan, addresses: [`${A.gwLan}/24`, `${A.gwLan6}/64`] },
  },
  {
    a: { ns: N.gw, ifname: GW_INTERFACES.wan, addresses: [`${A.gwWan}/24`, `${A.gwWan6}/64`] },
    b: { ns: N.wan, ifname: 'gw0', addresses: [`${A.wanGw}/24`, `${A.wanGw6}/64`] },
  },
  {
    a: { ns: N.remote, ifname: 'eth0', addresses: [`${A.remoteClient}/24`, `${A.remoteClient6}/64`] },
    b: { ns: N.wan, ifname: 'remote0', addresses: [`${A.wanRemote}/24`, `${A.wanRemote6}/64`] },
  },
];

/** Extra addresses on lo: the origin ("internet server") and bad-TLS server addresses in moat-wan. */
export const LAB_LOOPBACK_ADDRESSES: readonly { ns: LabNamespace; address: string }[] = [
  { ns: N.wan, address: `${A.origin}/32` },
  { ns: N.wan, address: `${A.origin6}/128` },
  ...BAD_TLS_VARIANTS.map((variant) => ({ ns: N.wan, address: `${variant.address}/32` })),
];

export const LAB_ROUTES: readonly { ns: LabNamespace; destination: string; via: string }[] = [
  { ns: N.lan, destination: 'default', via: A.gwLan },
  { ns: N.lan, destination: 'default', via: A.gwLan6 },
  { ns: N.gw, destination: 'default', via: A.wanGw },
  { ns: N.gw, destination: 'default', via: A.wanGw6 },
  { ns: N.remote, destination: 'default', via: A.wanRemote },
  { ns: N.remote, destination: 'default', via: A.wanRemote6 },
  // No NAT yet: the "internet" needs a way back to the LAN, through the gateway.
  { ns: N.wan, destination: LAB_PREFIXES.lan, via: A.gwWan },
  { ns: N.wan, destination: LAB_PREFIXES.lan6, via: A.gwWan6 },
];

/** Namespaces that route between their links. */
export const LAB_FORWARDING: readonly LabNamespace[] = [N.gw, N.wan];

export function resolveNamespace(name: string): LabNamespace | undefined {
  const all = Object.values(LAB_NAMESPACES) as string[];
  if (all.includes(name)) return name as LabNamespace;
  return Object.hasOwn(LAB_NAMESPACES, name) ? LAB_NAMESPACES[name as LabRole] : undefined;
}

/**
 * Creates or repairs the topology; safe to run on a lab that is already up
 * (missing pieces are added, existing ones kept). Returns what it had to create.
 */
export async function ensureTopology(): Promise<{ createdNamespaces: string[]; createdLinks: string[] }> {
  // The IPv6 half is a bonus: skip it on kernels booted without IPv6.
  const ipv6 = existsSync('/proc/sys/net/ipv6');
  const wanted = (address: string) => ipv6 || !address.includes(':');
  const existing = await listNamespaces();
  const createdNamespaces: string[] = [];
  for (const ns of Object.values(LAB_NAMESPACES)) {
    if (existing.includes(ns)) continue;
    await addNamespace(ns);
    createdNamespaces.push(ns);
  }
  for (const ns of Object.values(LAB_NAMESPACES)) {
    await setLinkUp(ns, 'lo');
  }

  const createdLinks: string[] = [];
  for (const link of LAB_LINKS) {
    const [hasA, hasB] = await Promise.all([
      linkExists(link.a.ns, link.a.ifname),
      linkExists(link.b.ns, link.b.ifname),
    ]);
    if (hasA && hasB) continue;
    // Half a veth pair cannot be re-paired: delete the survivor and recreate both ends.
    if (hasA) await deleteLink(link.a.ns, link.a.ifname);
    if (hasB) await deleteLink(link.b.ns, link.b.ifname);
    await addVethPair(link.a.ns, link.a.ifname, link.b.ns, link.b.ifname);
    createdLinks.push(`${link.a.ns}/${link.a.ifname}↔${link.b.ns}/${link.b.ifname}`);
  }
  for (const link of LAB_LINKS) {
    for (const end of [link.a, link.b]) {
      for (const address of end.addresses.filter(wanted)) await ensureAddress(end.ns, end.ifname, address);
      await setLinkUp(end.ns, end.ifname);
    }
  }
  for (const { ns, address } of LAB_LOOPBACK_ADDRESSES.filter((a) => wanted(a.address))) {
    await ensureAddress(ns, 'lo', address);
  }

  for (const ns of LAB_FORWARDING) {
    await setNamespaceSysctl(ns, 'net.ipv4.ip_forward', '1');
    if (ipv6) await setNamespaceSysctl(ns, 'net.ipv6.conf.all.forwarding', '1');
  }
  for (const route of LAB_ROUTES.filter((r) => wanted(r.via)))
    await ensureRoute(route.ns, route.destination, route.via);

  return { createdNamespaces, createdLinks };
}
