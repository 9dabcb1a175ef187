/**
 * The match part of a rule: zones, addresses and services combined into nft match text. One policy
 * rule can need several nft rules, because one nft rule cannot OR two conditions: IPv4 and IPv6,
 * interface zones and VPN-pool zones, named sets and inline elements, TCP and ICMP.
 */
import type { IpFamily, Policy } from '@moat/policy';
import { type AddressList, addressMatches } from './addresses.js';
import type { ServiceMatch } from './services.js';
import { anonymousSet, quote } from './syntax.js';

/** A zone as seen by a rule: its interfaces, or (for a zone without any, such as vpn) VPN pool addresses. */
export interface ZoneMatch {
  interfaces?: string[];
  pool?: AddressList;
}

/**
 * How a list of zones matches: `any` matches everything; zones with interfaces share one match;
 * zones without interfaces match the VPN pools' addresses (decrypted IPsec traffic comes from them;
 * `vpnPools` is undefined when the policy has none). An empty result means the rule can never match.
 */
export function zoneMatches(
  policy: Policy,
  zones: readonly string[],
  vpnPools: AddressList | undefined,
): ZoneMatch[] {
  if (zones.includes('any')) return [{}];
  const interfaces = zones.flatMap((zone) => policy.zones[zone]?.interfaces ?? []);
  const matches: ZoneMatch[] = interfaces.length > 0 ? [{ interfaces: [...new Set(interfaces)].sort() }] : [];
  const withoutInterfaces = zones.filter((zone) => (policy.zones[zone]?.interfaces.length ?? 0) === 0);
  if (withoutInterfaces.length > 0 && vpnPools) matches.push({ pool: vpnPools });
  return matches;
}

export interface FlowSpec {
  from: ZoneMatch[];
  /** Omitted for traffic to the gateway itself (the input chain). */
  to?: ZoneMatch[];
  source: AddressList;
  destination: AddressList;
  services: ServiceMatch[];
}

export interface FlowMatch {
  text: string;
  protocol?: 'tcp' | 'udp';
  family?: IpFamily;
}

/** Where the match runs: before routing the output interface is only known through a fib lookup. */
export type HookContext = 'forward' | 'prerouting' | 'postrouting' | 'input';

function interfaceMatch(direction: 'from' | 'to', interfaces: string[], context: HookContext): string {
  const names = anonymousSet(interfaces.map(quote));
  if (direction === 'from') return `iifname ${names}`;
  return context === 'prerouting' ? `fib daddr oifname ${names}` : `oifname ${names}`;
}

/** Alternatives for one dimension: `['']` when it does not constrain; `[]` when it cannot match. */
function alternatives(matches: string[] | undefined): string[] {
  return matches === undefined ? [''] : matches;
}

/** Every nft match a flow spec needs (their OR is the policy rule's match). */
export function flowMatches(spec: FlowSpec, context: HookContext): FlowMatch[] {
  const out: FlowMatch[] = [];
  for (const service of spec.services) {
    for (const from of spec.from) {
      for (const to of spec.to ?? [{}]) {
        const needsFamily =
          !spec.source.any ||
          !spec.destination.any ||
          from.pool !== undefined ||
          to.pool !== undefined ||
          service.family !== undefined;
        const families: (IpFamily | undefined)[] = !needsFamily
          ? [undefined]
          : service.family
            ? [service.family]
            : [4, 6];
        for (const family of families) {
          const perFamily = (list: AddressList | undefined, field: 'saddr' | 'daddr') =>
            family === undefined || list === undefined
              ? ['']
              : alternatives(addressMatches(list, family, field));
          const combos = [
            from.interfaces ? [interfaceMatch('from', from.interfaces, context)] : [''],
            perFamily(from.pool, 'saddr'),
            to.interfaces ? [interfaceMatch('to', to.interfaces, context)] : [''],
            perFamily(to.pool, 'daddr'),
            perFamily(spec.source, 'saddr'),
            perFamily(spec.destination, 'daddr'),
            [service.text],
          ];
          for (const parts of cartesian(combos)) {
            const text = parts.filter((part) => part !== '').join(' ');
            out.push({
              text,
              ...(service.protocol ? { protocol: service.protocol } : {}),
              ...(family ? { family } : {}),
            });
          }
        }
      }
    }
  }
  return out;
}

function cartesian(lists: readonly string[][]): string[][] {
  return lists.reduce<string[][]>(
    (acc, list) => acc.flatMap((prefix) => list.map((item) => [...prefix, item])),
    [[]],
  );
}
