/** Small pieces of nftables text syntax: quoting, anonymous sets, address elements. */
import { formatIp, type IpFamily } from '@moat/policy';

/** A quoted string: interface names, comments and log prefixes. */
export function quote(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}

/** `x` for one item, `{ x, y }` for several. */
export function anonymousSet(items: readonly string[]): string {
  return items.length === 1 ? (items[0] as string) : `{ ${items.join(', ')} }`;
}

/** The nft keyword for an address family's header: `ip` or `ip6`. */
export function familyKeyword(family: IpFamily): 'ip' | 'ip6' {
  return family === 4 ? 'ip' : 'ip6';
}

/** The nft type of an address set of a family. */
export function addressType(family: IpFamily): 'ipv4_addr' | 'ipv6_addr' {
  return family === 4 ? 'ipv4_addr' : 'ipv6_addr';
}

export interface Interval {
  first: bigint;
  last: bigint;
}

/**
 * Sorted intervals with overlapping and adjacent ones merged: nft refuses interval elements that
 * overlap, and fewer elements make smaller sets.
 */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  const merged: Interval[] = [];
  for (const interval of sorted) {
    const last = merged.at(-1);
    if (last && interval.first <= last.last + 1n) {
      if (interval.last > last.last) last.last = interval.last;
    } else merged.push({ first: interval.first, last: interval.last });
  }
  return merged;
}

/** A set element for an interval: an address, a prefix when the interval is exactly one, or first-last. */
export function intervalElement(family: IpFamily, { first, last }: Interval): string {
  if (first === last) return formatIp(family, first);
  const size = last - first + 1n;
  const isPowerOfTwo = (size & (size - 1n)) === 0n;
  if (isPowerOfTwo && (first & (size - 1n)) === 0n) {
    const length = (family === 4 ? 32 : 128) - (size.toString(2).length - 1);
    return `${formatIp(family, first)}/${length}`;
  }
  return `${formatIp(family, first)}-${formatIp(family, last)}`;
}
