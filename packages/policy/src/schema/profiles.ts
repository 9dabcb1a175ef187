/**
 * Feature profiles: reusable settings for one inspection engine each (antivirus, web filtering, content
 * filtering, TLS inspection, WAF). UTM policies bundle them per protocol.
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
import { hostPatternSchema } from './net.js';
import { extensionSchema, listOrRef, mimeTypeSchema } from './objects.js';
import { sizeSchema } from './units.js';

const failModeSchema = z
  .enum(['closed', 'open'])
  .default('closed')
  .describe('When the engine fails or times out: closed blocks the transfer, open lets it through (logged).');

const urlCategoryRefs = (what: string) =>
  uniqueList(refSchema('a URL category', 'defined under objects.urlCategories'), 'category')
    .default([])
    .describe(what);

const urlPatternRefs = (what: string) =>
  uniqueList(refSchema('a URL pattern list', 'defined under objects.urlPatterns'), 'pattern list')
    .default([])
    .describe(what);

export const antivirusProfileSchema = strictObject({
  description: descriptionSchema,
  maxScanSize: sizeSchema
    .default(25 * 2 ** 20)
    .describe('Largest body scanned, in bytes or "10MiB" (default 25MiB).'),
  overSizeAction: z
    .enum(['block', 'allow'])
    .default('allow')
    .describe(
      'What to do with bodies larger than maxScanSize: block, or allow unscanned (logged). Default allow.',
    ),
  scanMimeTypes: listOrRef(mimeTypeSchema, 'MIME list')
    .optional()
    .describe(
      'Scan only these MIME types (declared, or detected from the first bytes of a download; upload forms are always scanned): a mimeLists name or an inline list. Default: every type.',
    ),
  scanExtensions: listOrRef(extensionSchema, 'extension list')
    .optional()
    .describe(
      'Scan only these file extensions (of the path, the Content-Disposition file name, or the type detected from the first bytes of a download; upload forms are always scanned): an extensionLists name or an inline list. Default: every file.',
    ),
  failMode: failModeSchema,
  timeoutMs: z
    .number()
    .int()
    .min(100)
    .max(600_000)
    .default(30_000)
    .describe('How long the proxy waits for a verdict, in milliseconds (default 30000).'),
  scanDownloads: z.boolean().default(true).describe('Scan response bodies (default true).'),
  scanUploads: z
    .boolean()
    .default(false)
    .describe('Scan request bodies, e.g. uploads to published sites (default false).'),
}).meta({ title: 'Antivirus profile', description: 'Gateway antivirus (clamd) settings.' });

export const webFilteringProfileSchema = strictObject({
  description: descriptionSchema,
  defaultAction: z
    .enum(['allow', 'block'])
    .default('allow')
    .describe('Action when nothing below matches (default allow).'),
  blockCategories: urlCategoryRefs('URL categories to block.'),
  allowCategories: urlCategoryRefs('URL categories to allow (wins over blockCategories).'),
  blockUrlPatterns: urlPatternRefs('URL pattern lists to block (wins over categories).'),
  allowUrlPatterns: urlPatternRefs('URL pattern lists to allow (wins over everything else).'),
  safeSearch: z
    .boolean()
    .default(false)
    .describe("Enforce search engines' safe-search mode (default false)."),
  blockPageMessage: z.string().max(2000).optional().describe('Text shown on the block page.'),
}).meta({
  title: 'Web filtering profile',
  description:
    'URL filtering. Precedence: allowUrlPatterns, blockUrlPatterns, allowCategories, blockCategories, defaultAction.',
});

export const contentFilteringProfileSchema = strictObject({
  description: descriptionSchema,
  blockMimeTypes: listOrRef(mimeTypeSchema, 'MIME list')
    .optional()
    .describe('Block these MIME types: a mimeLists name or an inline list.'),
  blockExtensions: listOrRef(extensionSchema, 'extension list')
    .optional()
    .describe('Block these file extensions: an extensionLists name or an inline list.'),
  maxRequestBodySize: sizeSchema.optional().describe('Largest request body allowed (bytes or "10MiB").'),
  maxResponseBodySize: sizeSchema.optional().describe('Largest response body allowed (bytes or "10MiB").'),
}).meta({
  title: 'Content filtering profile',
  description: 'Blocking by MIME type, extension and body size.',
});

export const tlsInspectionProfileSchema = strictObject({
  description: descriptionSchema,
  mode: z
    .enum(['bump', 'splice'])
    .default('bump')
    .describe('bump decrypts and inspects; splice passes TLS through, deciding on SNI only (default bump).'),
  bypassCategories: urlCategoryRefs('URL categories spliced rather than bumped (e.g. banking, health).'),
  bypassHosts: listOrRef(hostPatternSchema, 'URL pattern list')
    .optional()
    .describe('Hosts never bumped (certificate-pinned apps): a urlPatterns name or an inline list of hosts.'),
  blockCategories: urlCategoryRefs('URL categories refused at the TLS handshake (SNI).'),
  upstreamValidation: strictObject({
    extraCaFiles: uniqueList(absolutePathSchema, 'file')
      .default([])
      .describe('PEM files of extra CAs trusted for upstream servers, besides the system store.'),
    exceptions: uniqueList(hostPatternSchema, 'host')
      .default([])
      .describe('Hosts whose invalid upstream certificates are tolerated. Use sparingly.'),
  })
    .prefault({})
    .describe('Upstream certificate validation (always on; a bad upstream certificate is never hidden).'),
  minClientTls: z
    .union([z.enum(['1.2', '1.3']), z.literal(1.2), z.literal(1.3)], { error: 'expected "1.2" or "1.3"' })
    .transform((value): '1.2' | '1.3' => (value === 1.2 || value === '1.2' ? '1.2' : '1.3'))
    .default('1.2')
    .describe('Lowest TLS version offered to clients when bumping: "1.2" or "1.3" (default "1.2").'),
}).meta({ title: 'TLS inspection profile', description: 'Bump/splice decisions and upstream validation.' });

export const wafRuleExclusionSchema = strictObject({
  ruleId: z.number().int().positive().describe('CRS rule id, e.g. 942100.'),
  path: z
    .string()
    .regex(/^\//, 'expected a URL path starting with "/"')
    .optional()
    .describe('Only for requests whose path starts with this.'),
  parameter: z.string().min(1).optional().describe('Only for this request parameter (ARGS:name).'),
  description: descriptionSchema,
});

export const wafProfileSchema = strictObject({
  description: descriptionSchema,
  mode: z.enum(['block', 'detect']).default('block').describe('block, or detect (log only). Default block.'),
  paranoiaLevel: z.number().int().min(1).max(4).default(1).describe('CRS paranoia level 1-4 (default 1).'),
  inboundAnomalyThreshold: z
    .number()
    .int()
    .min(1)
    .default(5)
    .describe('Request anomaly score that blocks (default 5).'),
  outboundAnomalyThreshold: z
    .number()
    .int()
    .min(1)
    .default(4)
    .describe('Response anomaly score that blocks (default 4).'),
  inspectResponses: z.boolean().default(false).describe('Run the response phase too (default false).'),
  ruleExclusions: z
    .array(wafRuleExclusionSchema)
    .default([])
    .describe('CRS rules to skip, optionally per path/parameter.'),
  failMode: failModeSchema,
}).meta({ title: 'WAF profile', description: 'OWASP Core Rule Set settings for a published site.' });

export const profilesSchema = strictObject({
  antivirus: z.record(nameSchema, antivirusProfileSchema).default({}).describe('Antivirus profiles by name.'),
  webFiltering: z
    .record(nameSchema, webFilteringProfileSchema)
    .default({})
    .describe('Web filtering profiles by name.'),
  contentFiltering: z
    .record(nameSchema, contentFilteringProfileSchema)
    .default({})
    .describe('Content filtering profiles by name.'),
  tlsInspection: z
    .record(nameSchema, tlsInspectionProfileSchema)
    .default({})
    .describe('TLS inspection profiles by name.'),
  waf: z.record(nameSchema, wafProfileSchema).default({}).describe('WAF profiles by name.'),
}).meta({
  title: 'Profiles',
  description: 'Feature profiles by engine; QoS classes live under qos.classes.',
});

/** The profile kinds, as keys of `profiles` and of a UTM policy's protocol section. */
export const PROFILE_KINDS = [
  'antivirus',
  'webFiltering',
  'contentFiltering',
  'tlsInspection',
  'waf',
] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];

export type AntivirusProfile = z.output<typeof antivirusProfileSchema>;
export type WebFilteringProfile = z.output<typeof webFilteringProfileSchema>;
export type ContentFilteringProfile = z.output<typeof contentFilteringProfileSchema>;
export type TlsInspectionProfile = z.output<typeof tlsInspectionProfileSchema>;
export type WafRuleExclusion = z.output<typeof wafRuleExclusionSchema>;
export type WafProfile = z.output<typeof wafProfileSchema>;
export type Profiles = z.output<typeof profilesSchema>;
