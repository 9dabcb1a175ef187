/** UTM policies: named bundles of feature profiles per protocol, referenced from a permit rule. */
import { z } from 'zod';
import { descriptionSchema, nameSchema, refSchema, strictObject } from './common.js';

const profileRef = (kind: string) => refSchema(`a ${kind} profile`, `defined under profiles`).optional();

const httpSchema = strictObject({
  antivirus: profileRef('antivirus').describe('Antivirus profile (profiles.antivirus).'),
  webFiltering: profileRef('web filtering').describe('Web filtering profile (profiles.webFiltering).'),
  contentFiltering: profileRef('content filtering').describe(
    'Content filtering profile (profiles.contentFiltering).',
  ),
  waf: profileRef('WAF').describe('WAF profile (profiles.waf), for published sites.'),
});

const httpsSchema = strictObject({
  ...httpSchema.shape,
  tlsInspection: profileRef('TLS inspection').describe(
    'TLS inspection profile (profiles.tlsInspection). Without one, HTTPS is filtered on SNI only.',
  ),
});

const ftpSchema = strictObject({
  antivirus: profileRef('antivirus').describe('Antivirus profile (profiles.antivirus).'),
  contentFiltering: profileRef('content filtering').describe(
    'Content filtering profile (profiles.contentFiltering).',
  ),
});

export const utmPolicySchema = strictObject({
  description: descriptionSchema,
  http: httpSchema.optional().describe('Profiles applied to HTTP.'),
  https: httpsSchema
    .optional()
    .describe('Profiles applied to HTTPS (content inspection needs a bump-mode tlsInspection).'),
  ftp: ftpSchema.optional().describe('Profiles applied to FTP transfers.'),
}).meta({ title: 'UTM policy', description: 'A named bundle of profile references per protocol.' });

export const utmPoliciesSchema = z.record(nameSchema, utmPolicySchema).default({}).meta({
  title: 'UTM policies',
  description: 'UTM policies by name, referenced by security rules (utmPolicy).',
});

/** The protocols a UTM policy can cover, and which profile kinds each accepts. */
export const UTM_PROTOCOL_PROFILES = {
  http: ['antivirus', 'webFiltering', 'contentFiltering', 'waf'],
  https: ['antivirus', 'webFiltering', 'contentFiltering', 'waf', 'tlsInspection'],
  ftp: ['antivirus', 'contentFiltering'],
} as const;

export type UtmProtocol = keyof typeof UTM_PROTOCOL_PROFILES;
export type UtmPolicy = z.output<typeof utmPolicySchema>;
export type UtmPolicies = z.output<typeof utmPoliciesSchema>;
