/**
 * NAT: source NAT (masquerade, pools, exemptions) and destination NAT (port forwards). NAT rules do not
 * permit traffic: a security rule must permit the flow, matching the translated destination.
 */
import { z } from 'zod';
import { descriptionSchema, interfaceNameSchema, nameSchema, refSchema, strictObject } from './common.js';
import { addressOrRefSchema, portSchema } from './net.js';
import { addressListSchema, serviceListSchema, zoneListSchema } from './security-rules.js';

export const sourceNatTranslationSchema = z
  .union(
    [
      z.literal('masquerade'),
      z.literal('none'),
      strictObject({
        pool: addressOrRefSchema(['ip', 'prefix', 'range'], 'an address, prefix or range').describe(
          'Addresses to translate to: a literal, or the name of an address object.',
        ),
        persistent: z
          .boolean()
          .default(false)
          .describe('Give a client the same pool address for all its connections (default false).'),
      }),
    ],
    { error: 'expected "masquerade", "none", or {pool: <address, prefix, range or address name>}' },
  )
  .describe('masquerade (the egress interface address), none (exempt from NAT), or {pool}.');

export const sourceNatRuleSchema = strictObject({
  name: nameSchema.describe('Unique source NAT rule name.'),
  description: descriptionSchema,
  disabled: z.boolean().default(false).describe('Keep the rule but do not apply it (default false).'),
  fromZones: zoneListSchema.describe('Zones the traffic comes from.'),
  toZones: zoneListSchema
    .optional()
    .describe('Zones the traffic leaves to (or set egressInterface instead).'),
  egressInterface: interfaceNameSchema
    .optional()
    .describe('Interface the traffic leaves by (or set toZones instead).'),
  source: addressListSchema.default(['any']).describe('Source addresses (default any).'),
  destination: addressListSchema.default(['any']).describe('Destination addresses (default any).'),
  service: serviceListSchema.default(['any']).describe('Services (default any).'),
  translation: sourceNatTranslationSchema,
}).meta({ title: 'Source NAT rule', description: 'Rewrite source addresses of matching traffic.' });

export const destinationNatRuleSchema = strictObject({
  name: nameSchema.describe('Unique destination NAT rule name.'),
  description: descriptionSchema,
  disabled: z.boolean().default(false).describe('Keep the rule but do not apply it (default false).'),
  fromZones: zoneListSchema.describe('Zones the traffic arrives from (usually wan).'),
  source: addressListSchema.default(['any']).describe('Who may use the forward (default any).'),
  destinationAddress: addressOrRefSchema(['ip'], 'a single IP address')
    .optional()
    .describe("Original destination (default: the gateway's addresses in fromZones)."),
  service: refSchema('a service or service set').describe(
    'Original service (protocol and ports) to forward.',
  ),
  translateTo: strictObject({
    address: addressOrRefSchema(['ip'], 'a single IP address').describe(
      'Internal server address, or its address name.',
    ),
    port: portSchema.optional().describe('Internal port (default: unchanged). Needs a tcp/udp service.'),
  }).describe('Where to send it.'),
  hairpin: z
    .boolean()
    .default(false)
    .describe('Also translate for clients in internal zones using the public address (default false).'),
}).meta({ title: 'Destination NAT rule', description: 'A port forward to an internal server.' });

export const natSchema = strictObject({
  source: z.array(sourceNatRuleSchema).default([]).describe('Source NAT rules, in order.'),
  destination: z
    .array(destinationNatRuleSchema)
    .default([])
    .describe('Destination NAT rules (port forwards), in order.'),
}).meta({ title: 'NAT', description: 'Source and destination NAT rules.' });

export type SourceNatTranslation = z.output<typeof sourceNatTranslationSchema>;
export type SourceNatRule = z.output<typeof sourceNatRuleSchema>;
export type DestinationNatRule = z.output<typeof destinationNatRuleSchema>;
export type Nat = z.output<typeof natSchema>;
