/** The root of a Moat policy document. */
import { z } from 'zod';
import { strictObject } from './common.js';
import { natSchema } from './nat.js';
import { objectsSchema } from './objects.js';
import { profilesSchema } from './profiles.js';
import { qosSchema } from './qos.js';
import { securityRulesSchema } from './security-rules.js';
import { utmPoliciesSchema } from './utm-policies.js';
import { vpnSchema } from './vpn.js';
import { zonesSchema } from './zones.js';

export const POLICY_API_VERSION = 'moat/v1';
export const POLICY_KIND = 'Policy';

export const policyMetadataSchema = strictObject({
  name: z
    .string()
    .regex(
      /^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$/,
      'expected a lowercase name of letters, digits, "." and "-" (at most 63 characters)',
    )
    .describe('Name of the policy, e.g. "branch-paris".'),
  description: z.string().max(4096).optional().describe('What this policy is for.'),
  labels: z
    .record(
      z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9_./-]{0,62}$/, 'label keys: letters, digits, "_", ".", "/" and "-"'),
      z.string().max(256),
    )
    .optional()
    .describe('Free-form key/value labels.'),
});

/**
 * The policy document. Parsing it with this schema checks types and formats and normalises values; use
 * `validatePolicy` to also check references and cross-field rules.
 */
export const policySchema = strictObject({
  apiVersion: z
    .literal(POLICY_API_VERSION, `expected apiVersion: ${POLICY_API_VERSION}`)
    .describe('Always moat/v1.'),
  kind: z.literal(POLICY_KIND, `expected kind: ${POLICY_KIND}`).describe('Always Policy.'),
  metadata: policyMetadataSchema.describe('Name and description of the policy.'),
  zones: zonesSchema,
  objects: objectsSchema.prefault({}),
  profiles: profilesSchema.prefault({}),
  utmPolicies: utmPoliciesSchema,
  securityRules: securityRulesSchema,
  nat: natSchema.prefault({}),
  vpn: vpnSchema.optional().describe('IPsec VPN; omit to run no VPN.'),
  qos: qosSchema.optional().describe('Traffic shaping; omit to shape nothing.'),
}).meta({
  title: 'Moat policy',
  description:
    'One declarative document: zones, objects, profiles, UTM policies, security rules, NAT, VPN and QoS.',
});

/** A validated, normalised policy (sizes in bytes, rates in bit/s, durations in seconds, lists expanded). */
export type Policy = z.output<typeof policySchema>;
/** A policy as written (before normalisation). */
export type PolicyInput = z.input<typeof policySchema>;
export type PolicyMetadata = z.output<typeof policyMetadataSchema>;
