/**
 * Addresses and ports: parsing and validation of IPv4/IPv6 addresses, prefixes, ranges, DNS names and
 * port ranges, done properly (with node:net and integer arithmetic) rather than by regular expression alone.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';

export type IpFamily = 4 | 6;

/** A parsed address literal. `first`/`last` bound the addresses it covers (undefined for DNS names). */
export type ParsedAddress =
  | { kind: 'ip'; family: IpFamily; text: string; first: bigint; last: bigint }
  | { kind: 'prefix'; family: IpFamily; text: string; length: number; first: bigint; last: bigint }
  | { kind: 'range'; family: IpFamily; text: string; first: bigint; last: bigint }
  | { kind: 'dns'; text: string };

export type AddressKind = ParsedAddress['kind'];

const DNS_NAME_PATTERN =
  /^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

function ipv4ToBigInt(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function ipv6ToBigInt(text: string): bigint {
  let source = text;
  const lastColon = source.lastIndexOf(':');
  const trailing = source.slice(lastColon + 1);
  if (trailing.includes('.')) {
    // an embedded IPv4 address ("::ffff:192.0.2.1") is the last two groups
    const v4 = ipv4ToBigInt(trailing);
    source = `${source.slice(0, lastColon + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const [head = '', rest] = source.split('::');
  const headGroups = head === '' ? [] : head.split(':');
  let groups = headGroups;
  if (rest !== undefined) {
    const restGroups = rest === '' ? [] : rest.split(':');
    groups = [
      ...headGroups,
      ...Array<string>(8 - headGroups.length - restGroups.length).fill('0'),
      ...restGroups,
    ];
  }
  return groups.reduce((acc, group) => (acc << 16n) | BigInt(`0x${group}`), 0n);
}

/** A single IP address as family and integer value; undefined when it is not one (zone ids are refused). */
export function parseIp(text: string): { family: IpFamily; value: bigint } | undefined {
  if (isIPv4(text)) return { family: 4, value: ipv4ToBigInt(text) };
  if (isIPv6(text) && !text.includes('%')) return { family: 6, value: ipv6ToBigInt(text) };
  return undefined;
}

function bits(family: IpFamily): number {
  return family === 4 ? 32 : 128;
}

/** An address as text (IPv6 compressed as RFC 5952). */
export function formatIp(family: IpFamily, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups = [112n, 96n, 80n, 64n, 48n, 32n, 16n, 0n].map((shift) =>
    ((value >> shift) & 0xffffn).toString(16),
  );
  // compress the longest run of zero groups, as RFC 5952
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLength && j - i > 1) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestStart < 0) return groups.join(':');
  return `${groups.slice(0, bestStart).join(':')}::${groups.slice(bestStart + bestLength).join(':')}`;
}

function looksNumeric(text: string): boolean {
  return /^[0-9.]+$/.test(text) || text.includes(':') || text.includes('/');
}

/**
 * Parse an address literal: an IPv4/IPv6 address, a CIDR prefix ("10.0.0.0/8", host bits must be zero), a
 * range ("10.0.0.10-10.0.0.20", same family, first ≤ last) or a DNS name. Returns an error message otherwise.
 */
export function parseAddress(text: string): ParsedAddress | { error: string } {
  if (text.includes('/')) {
    const [address = '', length, ...extra] = text.split('/');
    const ip = parseIp(address);
    if (ip === undefined || length === undefined || extra.length > 0) {
      return { error: `"${text}" is not a valid CIDR prefix (expected address/length, e.g. 192.0.2.0/24)` };
    }
    const max = bits(ip.family);
    if (!/^(0|[1-9]\d{0,2})$/.test(length) || Number(length) > max) {
      return { error: `prefix length in "${text}" must be 0-${max} for IPv${ip.family}` };
    }
    const hostBits = BigInt(max - Number(length));
    const hostMask = (1n << hostBits) - 1n;
    if ((ip.value & hostMask) !== 0n) {
      const network = formatIp(ip.family, ip.value & ~hostMask);
      return { error: `"${text}" has host bits set; use the network address ${network}/${length}` };
    }
    return {
      kind: 'prefix',
      family: ip.family,
      text,
      length: Number(length),
      first: ip.value,
      last: ip.value | hostMask,
    };
  }
  const dash = text.indexOf('-');
  if (dash > 0 && parseIp(text.slice(0, dash)) !== undefined) {
    const first = parseIp(text.slice(0, dash));
    const last = parseIp(text.slice(dash + 1));
    if (first === undefined || last === undefined) {
      return {
        error: `"${text}" is not a valid address range (expected first-last, e.g. 192.0.2.10-192.0.2.20)`,
      };
    }
    if (first.family !== last.family) return { error: `range "${text}" mixes IPv4 and IPv6` };
    if (first.value > last.value)
      return { error: `range "${text}" ends before it starts; write it low-high` };
    return { kind: 'range', family: first.family, text, first: first.value, last: last.value };
  }
  const ip = parseIp(text);
  if (ip !== undefined) return { kind: 'ip', family: ip.family, text, first: ip.value, last: ip.value };
  if (looksNumeric(text)) {
    return {
      error: text.includes(':')
        ? `"${text}" is not a valid IPv6 address`
        : `"${text}" is not a valid IPv4 address, prefix or range`,
    };
  }
  if (DNS_NAME_PATTERN.test(text)) return { kind: 'dns', text };
  return { error: `"${text}" is not an IP address, CIDR prefix, address range or DNS name` };
}

/** True when the text is an address literal (as opposed to a name referring to an address object). */
export function isAddressLiteral(text: string): boolean {
  const parsed = parseAddress(text);
  return !('error' in parsed) && parsed.kind !== 'dns';
}

/** An address literal restricted to some kinds. */
export function addressLiteralSchema(kinds: readonly AddressKind[], what: string) {
  return z
    .string()
    .superRefine((text, ctx) => {
      const parsed = parseAddress(text);
      if ('error' in parsed) {
        ctx.addIssue({ code: 'custom', message: parsed.error });
      } else if (!kinds.includes(parsed.kind)) {
        ctx.addIssue({
          code: 'custom',
          message: `expected ${what}, got a ${describeKind(parsed.kind)} "${text}"`,
        });
      }
    })
    .describe(`${what[0]?.toUpperCase() ?? ''}${what.slice(1)}.`);
}

export function describeKind(kind: AddressKind): string {
  switch (kind) {
    case 'ip':
      return 'single address';
    case 'prefix':
      return 'CIDR prefix';
    case 'range':
      return 'address range';
    case 'dns':
      return 'DNS name';
  }
}

/** A DNS host name or a wildcard "*.example.com". */
export const hostPatternSchema = z
  .string()
  .refine(
    (text) =>
      DNS_NAME_PATTERN.test(text.startsWith('*.') ? text.slice(2) : text) || parseIp(text) !== undefined,
    {
      message: 'expected a host name ("example.com"), a wildcard ("*.example.com") or an IP address',
    },
  )
  .describe('A host name, a wildcard "*.example.com", or an IP address.');

/** True when the text is a valid host name (no wildcard). */
export function isDnsName(text: string): boolean {
  return DNS_NAME_PATTERN.test(text);
}

/** A normalised port range; a single port has from === to. */
export interface PortRange {
  from: number;
  to: number;
}

const PORT_TEXT_PATTERN = /^(\d{1,5})(?:\s*-\s*(\d{1,5}))?$/;

function toPortRange(value: number | string | PortRange): PortRange | string {
  let from: number;
  let to: number;
  if (typeof value === 'number') {
    from = value;
    to = value;
  } else if (typeof value === 'string') {
    const match = PORT_TEXT_PATTERN.exec(value.trim());
    if (match === null) return `"${value}" is not a port or port range (expected e.g. 443 or "8000-8100")`;
    from = Number(match[1]);
    to = match[2] === undefined ? from : Number(match[2]);
  } else {
    ({ from, to } = value);
  }
  if (!Number.isInteger(from) || from < 1 || from > 65535 || !Number.isInteger(to) || to < 1 || to > 65535) {
    return `ports must be 1-65535, got ${from === to ? from : `${from}-${to}`}`;
  }
  if (from > to) return `port range ${from}-${to} ends before it starts; write it low-high`;
  return { from, to };
}

const portItemSchema = z
  .union(
    [
      z.number().int(),
      z.string(),
      z.strictObject({ from: z.number().int(), to: z.number().int() }).describe('A normalised port range.'),
    ],
    { error: 'expected a port (443), a range ("8000-8100") or {from, to}' },
  )
  .transform((value, ctx): PortRange => {
    const range = toPortRange(value);
    if (typeof range === 'string') {
      ctx.issues.push({ code: 'custom', input: value, message: range });
      return z.NEVER;
    }
    return range;
  });

/** One port, a range "1000-2000", or a list of them; normalised to a list of {from, to}. */
export const portListSchema = z
  .union([portItemSchema, z.array(portItemSchema).min(1, 'the list of ports must not be empty')], {
    error: 'expected a port (443), a range ("8000-8100"), or a list of them',
  })
  .transform((value): PortRange[] => (Array.isArray(value) ? value : [value]))
  .meta({
    id: 'Ports',
    title: 'Ports',
    description: 'A port (443), a range ("8000-8100"), or a list of them. Normalised to [{from, to}].',
  });

/** A single port number. */
export const portSchema = z
  .number()
  .int()
  .min(1, 'ports must be 1-65535')
  .max(65535, 'ports must be 1-65535')
  .describe('A TCP/UDP port, 1-65535.');

const REF_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;

/**
 * Either a literal address of the given kinds or the name of an address object (resolved by the cross-checks).
 * A name starts with a letter and contains no ":" or "/", so the two never collide.
 */
export function addressOrRefSchema(kinds: readonly AddressKind[], what: string) {
  return z
    .string()
    .superRefine((text, ctx) => {
      if (REF_PATTERN.test(text)) return;
      const parsed = parseAddress(text);
      if ('error' in parsed) {
        ctx.addIssue({
          code: 'custom',
          message: `${parsed.error}; expected ${what} or the name of an address`,
        });
      } else if (!kinds.includes(parsed.kind)) {
        ctx.addIssue({
          code: 'custom',
          message: `expected ${what}, got a ${describeKind(parsed.kind)} "${text}"`,
        });
      }
    })
    .describe(`${what[0]?.toUpperCase() ?? ''}${what.slice(1)}, or the name of an address object.`);
}

/** True when the text would be read as a reference to an address object rather than a literal. */
export function isAddressRef(text: string): boolean {
  return REF_PATTERN.test(text);
}
