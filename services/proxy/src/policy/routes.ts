/**
 * Which interface an address is reached through, read from the kernel's main routing table
 * (/proc/net/route, /proc/net/ipv6_route) — the same answer the firewall's `fib` lookup gives, so
 * the proxy places clients and upstreams in the zones the firewall does. No netlink, no subprocess.
 */
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseIp, stripMappedV4 } from '@moat/policy';

interface Route {
  family: 4 | 6;
  network: bigint;
  prefixLength: number;
  iface: string;
}

const REFRESH_MS = 5_000;
const MAX_CACHED = 10_000;

/** The kernel prints IPv4 fields of /proc/net/route as host-order (little-endian) hex. */
const hexToV4 = (hex: string) => Buffer.from(hex, 'hex').reverse().readUInt32BE(0);
const popcount = (n: number) => n.toString(2).replaceAll('0', '').length;

function parseV4Routes(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split('\n').slice(1)) {
    const [iface, dest, , , , , , mask] = line.trim().split(/\s+/);
    if (!iface || dest?.length !== 8 || mask?.length !== 8) continue;
    routes.push({ family: 4, network: BigInt(hexToV4(dest)), prefixLength: popcount(hexToV4(mask)), iface });
  }
  return routes;
}

function parseV6Routes(text: string): Route[] {
  const routes: Route[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    const [dest, len] = fields;
    const iface = fields[9];
    if (!dest || !len || !iface || dest.length !== 32) continue;
    routes.push({ family: 6, network: BigInt(`0x${dest}`), prefixLength: Number.parseInt(len, 16), iface });
  }
  return routes;
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // no IPv6 in this kernel, or not Linux
  }
}

export class RouteTable {
  private routes: Route[] = [];
  private localAddresses = new Map<string, string>();
  private loadedAt = 0;
  private readonly cache = new Map<string, string | undefined>();

  constructor(private readonly procRoot = '/proc/net') {}

  /** The interface traffic to `ip` leaves through (for a local address: the interface that has it). */
  interfaceFor(ip: string): string | undefined {
    this.refreshIfStale();
    const key = stripMappedV4(ip);
    if (this.cache.has(key)) return this.cache.get(key);
    const result = this.localAddresses.get(key) ?? this.longestMatch(key);
    if (this.cache.size >= MAX_CACHED) this.cache.clear();
    this.cache.set(key, result);
    return result;
  }

  private longestMatch(ip: string): string | undefined {
    const parsed = parseIp(ip);
    if (!parsed) return undefined;
    const bits = parsed.family === 4 ? 32 : 128;
    let best: Route | undefined;
    for (const route of this.routes) {
      if (route.family !== parsed.family) continue;
      if (best && route.prefixLength <= best.prefixLength) continue;
      const shift = BigInt(bits - route.prefixLength);
      if (parsed.value >> shift === route.network >> shift) best = route;
    }
    return best?.iface;
  }

  private refreshIfStale(): void {
    const now = Date.now();
    if (now - this.loadedAt < REFRESH_MS) return;
    this.loadedAt = now;
    this.routes = [
      ...parseV4Routes(readOrEmpty(`${this.procRoot}/route`)),
      ...parseV6Routes(readOrEmpty(`${this.procRoot}/ipv6_route`)).filter((r) => r.iface !== 'lo'),
    ];
    this.localAddresses = new Map();
    for (const [name, addresses] of Object.entries(networkInterfaces())) {
      for (const address of addresses ?? [])
        this.localAddresses.set(address.address.split('%')[0] ?? '', name);
    }
    this.cache.clear();
  }
}
