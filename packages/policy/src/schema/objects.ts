/**
 * Custom objects: the named building blocks that profiles and rules refer to — addresses and address sets,
 * services and service sets, URL patterns and categories, MIME and extension lists, schedules.
 */
import { z } from 'zod';
import {
  absolutePathSchema,
  descriptionSchema,
  nameSchema,
  refSchema,
  strictObject,
  uniqueList,
} from './common.js';
import { addressLiteralSchema, hostPatternSchema, isDnsName, parseIp, portListSchema } from './net.js';

// ---------------------------------------------------------------------------------------------- addresses

const addressValueSchema = addressLiteralSchema(
  ['ip', 'prefix', 'range', 'dns'],
  'an IP address, CIDR prefix, address range ("a-b") or DNS name',
);

/** An address object: a string, or {address, description}. Normalised to the object form. */
export const addressObjectSchema = z
  .union(
    [addressValueSchema, strictObject({ address: addressValueSchema, description: descriptionSchema })],
    {
      error:
        'expected an address ("192.0.2.10", "10.0.0.0/8", "10.0.0.5-10.0.0.9", "host.example.com") or {address, description}',
    },
  )
  .transform((value) => (typeof value === 'string' ? { address: value } : value))
  .meta({
    title: 'Address',
    description:
      'An IPv4/IPv6 address, CIDR prefix (host bits zero), range "first-last", or DNS name (resolved by the firewall).',
  });

const networkEntrySchema = addressLiteralSchema(
  ['ip', 'prefix', 'range'],
  'an IP address, CIDR prefix or address range',
);

/**
 * An address set: a list of address / address-set names, or an object that may also carry inline entries
 * and a file of entries (for large blocklists). Normalised to {members, entries, file?, description?}.
 */
export const addressSetSchema = z
  .union(
    [
      z.array(refSchema('an address or address set')).min(1, 'an address set must have at least one member'),
      strictObject({
        description: descriptionSchema,
        members: z
          .array(refSchema('an address or address set'))
          .default([])
          .describe('Names of addresses and address sets (nesting is allowed, cycles are not).'),
        entries: uniqueList(networkEntrySchema, 'entry')
          .default([])
          .describe('Inline addresses, prefixes and ranges (no DNS names).'),
        file: absolutePathSchema
          .optional()
          .describe(
            'A file with one address, prefix or range per line ("#" comments allowed), e.g. a blocklist.',
          ),
      }),
    ],
    { error: 'expected a list of address names, or {members, entries, file}' },
  )
  .transform((value) => (Array.isArray(value) ? { members: value, entries: [] as string[] } : value))
  .meta({
    title: 'Address set',
    description: 'A list of address / address-set names, or {members, entries, file, description}.',
  });

// ----------------------------------------------------------------------------------------------- services

export const PROTOCOLS = ['tcp', 'udp', 'icmp', 'icmpv6', 'esp', 'any'] as const;

const icmpTypeSchema = z
  .number()
  .int()
  .min(0)
  .max(255)
  .describe('ICMP type (e.g. 8 echo-request; 128 for ICMPv6).');
const icmpCodeSchema = z.number().int().min(0).max(255).describe('ICMP code; needs icmpType.');

function portService<P extends 'tcp' | 'udp'>(protocol: P) {
  return strictObject({
    protocol: z.literal(protocol),
    ports: portListSchema.describe('Destination ports.'),
    sourcePorts: portListSchema.optional().describe('Source ports (rarely needed).'),
    description: descriptionSchema,
  });
}

function icmpService<P extends 'icmp' | 'icmpv6'>(protocol: P) {
  return strictObject({
    protocol: z.literal(protocol),
    icmpType: icmpTypeSchema.optional(),
    icmpCode: icmpCodeSchema.optional(),
    description: descriptionSchema,
  });
}

/** A service: a protocol and, for tcp/udp, destination ports (and optionally source ports). */
export const serviceSchema = z
  .discriminatedUnion('protocol', [
    portService('tcp'),
    portService('udp'),
    icmpService('icmp'),
    icmpService('icmpv6'),
    strictObject({ protocol: z.literal('esp'), description: descriptionSchema }),
    strictObject({ protocol: z.literal('any'), description: descriptionSchema }),
  ])
  .meta({
    title: 'Service',
    description:
      'protocol (tcp, udp, icmp, icmpv6, esp, any); tcp/udp need ports: 443, "8000-8100" or a list.',
  });

/** A service set: a list of service / service-set names, or {members, description}. */
export const serviceSetSchema = z
  .union(
    [
      z.array(refSchema('a service or service set')).min(1, 'a service set must have at least one member'),
      strictObject({
        description: descriptionSchema,
        members: z
          .array(refSchema('a service or service set'))
          .min(1, 'a service set must have at least one member'),
      }),
    ],
    { error: 'expected a list of service names, or {members, description}' },
  )
  .transform((value) => (Array.isArray(value) ? { members: value } : value))
  .meta({
    title: 'Service set',
    description: 'A list of service / service-set names (predefined ones included).',
  });

export type Service = z.output<typeof serviceSchema>;
export type ServiceSet = z.output<typeof serviceSetSchema>;

/** Services that may be referenced without being defined. Defining a service with one of these names is an error. */
export const PREDEFINED_SERVICES: Readonly<Record<string, Service>> = Object.freeze({
  http: { protocol: 'tcp', ports: [{ from: 80, to: 80 }], description: 'HTTP' },
  https: { protocol: 'tcp', ports: [{ from: 443, to: 443 }], description: 'HTTPS' },
  'http-alt': { protocol: 'tcp', ports: [{ from: 8080, to: 8080 }], description: 'HTTP alternate port' },
  quic: { protocol: 'udp', ports: [{ from: 443, to: 443 }], description: 'QUIC / HTTP/3' },
  'dns-udp': { protocol: 'udp', ports: [{ from: 53, to: 53 }], description: 'DNS over UDP' },
  'dns-tcp': { protocol: 'tcp', ports: [{ from: 53, to: 53 }], description: 'DNS over TCP' },
  dot: { protocol: 'tcp', ports: [{ from: 853, to: 853 }], description: 'DNS over TLS' },
  ssh: { protocol: 'tcp', ports: [{ from: 22, to: 22 }], description: 'SSH' },
  ftp: { protocol: 'tcp', ports: [{ from: 21, to: 21 }], description: 'FTP control' },
  smtp: { protocol: 'tcp', ports: [{ from: 25, to: 25 }], description: 'SMTP' },
  submission: { protocol: 'tcp', ports: [{ from: 587, to: 587 }], description: 'SMTP submission' },
  smtps: { protocol: 'tcp', ports: [{ from: 465, to: 465 }], description: 'SMTP over TLS' },
  imaps: { protocol: 'tcp', ports: [{ from: 993, to: 993 }], description: 'IMAP over TLS' },
  pop3s: { protocol: 'tcp', ports: [{ from: 995, to: 995 }], description: 'POP3 over TLS' },
  ntp: { protocol: 'udp', ports: [{ from: 123, to: 123 }], description: 'NTP' },
  dhcp: { protocol: 'udp', ports: [{ from: 67, to: 68 }], description: 'DHCP' },
  snmp: { protocol: 'udp', ports: [{ from: 161, to: 161 }], description: 'SNMP' },
  syslog: { protocol: 'udp', ports: [{ from: 514, to: 514 }], description: 'syslog' },
  rdp: { protocol: 'tcp', ports: [{ from: 3389, to: 3389 }], description: 'Remote Desktop' },
  ike: { protocol: 'udp', ports: [{ from: 500, to: 500 }], description: 'IKE' },
  'ike-nat-t': {
    protocol: 'udp',
    ports: [{ from: 4500, to: 4500 }],
    description: 'IKE / ESP with NAT traversal',
  },
  esp: { protocol: 'esp', description: 'IPsec ESP' },
  ping: { protocol: 'icmp', icmpType: 8, description: 'ICMP echo request' },
  ping6: { protocol: 'icmpv6', icmpType: 128, description: 'ICMPv6 echo request' },
  icmp: { protocol: 'icmp', description: 'all ICMP' },
  icmpv6: { protocol: 'icmpv6', description: 'all ICMPv6' },
} satisfies Record<string, Service>);

/** Service sets that may be referenced without being defined. */
export const PREDEFINED_SERVICE_SETS: Readonly<Record<string, ServiceSet>> = Object.freeze({
  dns: { members: ['dns-udp', 'dns-tcp'], description: 'DNS over UDP and TCP' },
  web: { members: ['http', 'https'], description: 'HTTP and HTTPS' },
  ipsec: { members: ['ike', 'ike-nat-t', 'esp'], description: 'IKE, NAT-T and ESP' },
} satisfies Record<string, ServiceSet>);

// -------------------------------------------------------------------------------------------- URL objects

const URL_PATTERN = /^(?:https?:\/\/)?(\*\.)?([^/:?#\s]+)(?::(\d{1,5}))?(\/\S*)?$/i;

/** True for "example.com", "*.example.com", "example.com/path", "https://example.com/path". */
export function isUrlPattern(text: string): boolean {
  const match = URL_PATTERN.exec(text);
  if (match === null) return false;
  const [, , host = '', port] = match;
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) return false;
  return isDnsName(host) || parseIp(host) !== undefined;
}

export const urlPatternSchema = z
  .string()
  .refine(isUrlPattern, {
    message:
      'expected a domain ("example.com"), a wildcard ("*.example.com") or a URL prefix ("example.com/path", "https://example.com/path")',
  })
  .describe('A domain (subdomains included), "*.example.com", or a URL prefix.');

export const urlPatternListSchema = uniqueList(urlPatternSchema, 'pattern')
  .min(1, 'a URL pattern list must not be empty')
  .meta({ title: 'URL patterns', description: 'Domains, "*.example.com" wildcards and URL prefixes.' });

const categoryNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]*$/, 'expected a category directory name such as "adult" or "social_networks"');

/**
 * A URL category: categories from a list directory in the UT1 / squidGuard layout
 * (`<source>/<category>/domains` and `<category>/urls`, one entry per line), inline lists, or both.
 */
export const urlCategorySchema = strictObject({
  description: descriptionSchema,
  source: absolutePathSchema
    .optional()
    .describe('A directory in UT1/squidGuard layout: <source>/<category>/domains and <category>/urls.'),
  categories: uniqueList(categoryNameSchema, 'category')
    .min(1, 'list at least one category directory')
    .optional()
    .describe('Category directories under source to include (requires source).'),
  domains: uniqueList(hostPatternSchema, 'domain')
    .optional()
    .describe('Inline domains (subdomains included).'),
  urls: uniqueList(urlPatternSchema, 'URL')
    .optional()
    .describe('Inline URL prefixes, as in a "urls" list file.'),
}).meta({
  title: 'URL category',
  description: '{source, categories} naming UT1/squidGuard list directories, and/or inline domains and urls.',
});

// ------------------------------------------------------------------------------------ MIME and extensions

// no /i flag: patterns given to .regex() end up in the JSON Schema, where flags are lost
const MIME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*\/(?:[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*|\*)$/;

export const mimeTypeSchema = z
  .string()
  .regex(MIME_PATTERN, 'expected a MIME type such as "application/pdf" or "image/*"')
  .transform((value) => value.toLowerCase())
  .describe('A MIME type, "type/subtype" or "type/*".');

export const mimeListSchema = uniqueList(mimeTypeSchema, 'MIME type')
  .min(1, 'a MIME list must not be empty')
  .meta({ title: 'MIME list', description: 'MIME types such as "application/pdf" or "video/*".' });

export const extensionSchema = z
  .string()
  .regex(/^\.?[A-Za-z0-9]+(?:\.[A-Za-z0-9]+)*$/, 'expected a file extension such as "exe" or "tar.gz"')
  .transform((value) => value.replace(/^\./, '').toLowerCase())
  .describe('A file extension, with or without the leading dot; normalised to lowercase without it.');

export const extensionListSchema = uniqueList(extensionSchema, 'extension')
  .min(1, 'an extension list must not be empty')
  .meta({ title: 'Extension list', description: 'File extensions such as "exe", "js", "tar.gz".' });

// ---------------------------------------------------------------------------------------------- schedules

export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];
const DAY_GROUPS: Readonly<Record<string, readonly Day[]>> = {
  daily: DAYS,
  weekdays: ['mon', 'tue', 'wed', 'thu', 'fri'],
  weekend: ['sat', 'sun'],
};

const daysSchema = z
  .union([z.enum(['daily', 'weekdays', 'weekend']), uniqueList(z.enum(DAYS), 'day').min(1)], {
    error: 'expected "daily", "weekdays", "weekend" or a list of days (mon, tue, wed, thu, fri, sat, sun)',
  })
  .transform((value): Day[] => {
    const days = typeof value === 'string' ? (DAY_GROUPS[value] ?? []) : value;
    return DAYS.filter((day) => days.includes(day));
  })
  .describe('"daily", "weekdays", "weekend" or a list of mon..sun; normalised to a list in week order.');

const timeSchema = (max: string) =>
  z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$|^24:00$/, 'expected a time HH:MM (00:00-23:59, or 24:00 as an end)')
    .refine((value) => value <= max, { message: `expected a time no later than ${max}` });

export const scheduleWindowSchema = strictObject({
  days: daysSchema,
  start: timeSchema('23:59').describe('Start time HH:MM (inclusive).'),
  end: timeSchema('24:00').describe(
    'End time HH:MM (exclusive); earlier than start means the window runs past midnight.',
  ),
});

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

export const scheduleSchema = strictObject({
  description: descriptionSchema,
  timezone: z
    .string()
    .refine(isTimeZone, { message: 'expected an IANA time zone such as "UTC" or "Europe/Paris"' })
    .default('UTC')
    .describe('IANA time zone of the times (default UTC).'),
  windows: z
    .array(scheduleWindowSchema)
    .min(1, 'a schedule needs at least one window')
    .describe('When it is active.'),
}).meta({ title: 'Schedule', description: 'Time windows (days + HH:MM-HH:MM) in a time zone.' });

// ---------------------------------------------------------------------------------------------- section

export const objectsSchema = strictObject({
  addresses: z.record(nameSchema, addressObjectSchema).default({}).describe('Address objects by name.'),
  addressSets: z.record(nameSchema, addressSetSchema).default({}).describe('Address sets by name.'),
  services: z
    .record(nameSchema, serviceSchema)
    .default({})
    .describe('Services by name (see also the predefined ones).'),
  serviceSets: z.record(nameSchema, serviceSetSchema).default({}).describe('Service sets by name.'),
  urlPatterns: z.record(nameSchema, urlPatternListSchema).default({}).describe('URL pattern lists by name.'),
  urlCategories: z.record(nameSchema, urlCategorySchema).default({}).describe('URL categories by name.'),
  mimeLists: z.record(nameSchema, mimeListSchema).default({}).describe('MIME type lists by name.'),
  extensionLists: z
    .record(nameSchema, extensionListSchema)
    .default({})
    .describe('File extension lists by name.'),
  schedules: z.record(nameSchema, scheduleSchema).default({}).describe('Schedules by name.'),
}).meta({ title: 'Objects', description: 'Named building blocks referred to by profiles and rules.' });

/** Either the name of a list object (a string) or the values inline (a list). */
export function listOrRef<T extends z.ZodType<string, string>>(item: T, listKind: string) {
  const article = /^[aeiou]/i.test(listKind) ? 'an' : 'a';
  return z
    .union(
      [
        refSchema(`${article} ${listKind}`, 'or an inline list of values, e.g. [a, b]'),
        uniqueList(item, 'value').min(1),
      ],
      {
        error: `expected the name of ${article} ${listKind}, or an inline list`,
      },
    )
    .describe(`The name of ${article} ${listKind} (a string), or the values inline (a list).`);
}

export type AddressObject = z.output<typeof addressObjectSchema>;
export type AddressSet = z.output<typeof addressSetSchema>;
export type UrlPatternList = z.output<typeof urlPatternListSchema>;
export type UrlCategory = z.output<typeof urlCategorySchema>;
export type MimeList = z.output<typeof mimeListSchema>;
export type ExtensionList = z.output<typeof extensionListSchema>;
export type ScheduleWindow = z.output<typeof scheduleWindowSchema>;
export type Schedule = z.output<typeof scheduleSchema>;
export type Objects = z.output<typeof objectsSchema>;
