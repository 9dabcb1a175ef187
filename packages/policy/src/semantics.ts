/**
 * What a validated policy means at run time, shared by every engine that evaluates it (the proxy
 * matches flows against it, the firewall renders it): address and service references expanded to
 * what they cover, and whether a schedule is active.
 */
import { ANY } from './schema/common.js';
import { type IpFamily, type ParsedAddress, parseAddress, parseIp } from './schema/net.js';
import {
  PREDEFINED_SERVICE_SETS,
  PREDEFINED_SERVICES,
  type Schedule,
  type Service,
} from './schema/objects.js';
import type { Policy } from './schema/policy.js';

export type AddressRange = Extract<ParsedAddress, { first: bigint }>;

/** The addresses a list of references covers. `any` short-circuits everything else. */
export interface ExpandedAddresses {
  any: boolean;
  ranges: AddressRange[];
  /** DNS-name address objects (the firewall resolves them; the proxy compares host names). */
  dnsNames: string[];
  /** Files of entries named by address sets (large blocklists), read by the engine. */
  files: string[];
}

/** Expands address / address-set names (nested sets included) into ranges, DNS names and files. */
export function expandAddresses(policy: Policy, refs: readonly string[]): ExpandedAddresses {
  const out: ExpandedAddresses = { any: false, ranges: [], dnsNames: [], files: [] };
  const seen = new Set<string>();
  const addLiteral = (text: string) => {
    const parsed = parseAddress(text);
    if ('error' in parsed) return; // validation already refused it; nothing sensible to add
    if (parsed.kind === 'dns') out.dnsNames.push(parsed.text.toLowerCase());
    else out.ranges.push(parsed);
  };
  const visit = (ref: string) => {
    if (ref === ANY) {
      out.any = true;
      return;
    }
    if (seen.has(ref)) return; // validation refuses cycles; this only guards repeats
    seen.add(ref);
    const object = policy.objects.addresses[ref];
    if (object) return addLiteral(object.address);
    const set = policy.objects.addressSets[ref];
    if (!set) return;
    for (const member of set.members) visit(member);
    for (const entry of set.entries) addLiteral(entry);
    if (set.file) out.files.push(set.file);
  };
  for (const ref of refs) visit(ref);
  return out;
}

/** True when `ip` falls in one of the ranges. */
export function addressInRanges(ip: string, ranges: readonly AddressRange[]): boolean {
  const parsed = parseIp(stripMappedV4(ip));
  if (!parsed) return false;
  return ranges.some(
    (range) => range.family === parsed.family && parsed.value >= range.first && parsed.value <= range.last,
  );
}

/** "::ffff:10.0.0.1" (how dual-stack sockets report IPv4 peers) → "10.0.0.1". */
export function stripMappedV4(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

export function ipFamily(ip: string): IpFamily | undefined {
  return parseIp(stripMappedV4(ip))?.family;
}

/** Expands service / service-set names (predefined ones included) into services; `any` → undefined. */
export function expandServices(policy: Policy, refs: readonly string[]): Service[] | undefined {
  if (refs.includes(ANY)) return undefined;
  const out: Service[] = [];
  const seen = new Set<string>();
  const visit = (ref: string) => {
    if (seen.has(ref)) return;
    seen.add(ref);
    const service = policy.objects.services[ref] ?? PREDEFINED_SERVICES[ref];
    if (service) {
      out.push(service);
      return;
    }
    const set = policy.objects.serviceSets[ref] ?? PREDEFINED_SERVICE_SETS[ref];
    for (const member of set?.members ?? []) visit(member);
  };
  for (const ref of refs) visit(ref);
  return out;
}

/** HTB minor ids of QoS classes lie in [FIRST, LAST]; lower ids are left for the root and inner classes. */
const FIRST_QOS_CLASS_MINOR = 0x10;
const LAST_QOS_CLASS_MINOR = 0xfffe;

/** FNV-1a, 32 bits: a stable, well-spread number for a class name. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/**
 * The HTB minor id of each QoS class (major 1). The firewall marks packets with
 * `meta priority set 1:<id>` and keeps the id in each flow's conntrack mark; the qos service builds
 * classes with the same ids. An id comes from a hash of the class's name, not its position, so adding
 * or removing another class does not move running flows into a different class. Two names that hash
 * alike (rare among 65,519 ids) are resolved in name order, to the next free id.
 */
export function qosClassIds(policy: Policy): Map<string, number> {
  const span = LAST_QOS_CLASS_MINOR - FIRST_QOS_CLASS_MINOR + 1;
  const taken = new Set<number>();
  const ids = new Map<string, number>();
  for (const name of Object.keys(policy.qos?.classes ?? {}).sort()) {
    let offset = fnv1a(name) % span;
    while (taken.has(offset)) offset = (offset + 1) % span;
    taken.add(offset);
    ids.set(name, FIRST_QOS_CLASS_MINOR + offset);
  }
  return ids;
}

/** True when one of the services covers a TCP/UDP connection to `port`. */
export function servicesCover(
  services: readonly Service[] | undefined,
  protocol: 'tcp' | 'udp',
  port: number,
): boolean {
  if (services === undefined) return true;
  return services.some(
    (service) =>
      service.protocol === 'any' ||
      (service.protocol === protocol &&
        service.ports.some((range) => port >= range.from && port <= range.to)),
  );
}

const WEEKDAY_INDEX: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };
const DAY_NAMES = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** Day of week and minutes since midnight of `at` in a time zone. */
function localTime(at: Date, timeZone: string): { day: number; minutes: number } {
  const parts = new Intl.DateTimeFormat('en-GB', {
    timeZone,
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (type: string) => parts.find((part) => part.type === type)?.value ?? '0';
  return {
    day: WEEKDAY_INDEX[get('weekday')] ?? 0,
    minutes: Number(get('hour')) * 60 + Number(get('minute')),
  };
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/**
 * True while one of the schedule's windows is open at `at`. A window whose end is earlier than its
 * start runs past midnight: it opens on its listed days and closes on the following morning.
 */
export function isScheduleActive(schedule: Schedule, at: Date = new Date()): boolean {
  const { day, minutes } = localTime(at, schedule.timezone);
  const today = DAY_NAMES[day] as (typeof DAY_NAMES)[number];
  const yesterday = DAY_NAMES[(day + 6) % 7] as (typeof DAY_NAMES)[number];
  return schedule.windows.some((window) => {
    const start = toMinutes(window.start);
    const end = toMinutes(window.end);
    if (start < end) return window.days.includes(today) && minutes >= start && minutes < end;
    // overnight: the evening part belongs to the listed day, the morning part to the day after
    return (
      (window.days.includes(today) && minutes >= start) || (window.days.includes(yesterday) && minutes < end)
    );
  });
}
