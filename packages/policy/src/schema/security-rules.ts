/**
 * Security rules: the ordered rule base. The first enabled rule whose zones, addresses, service and schedule
 * match decides; traffic no rule matches is denied.
 */
import { z } from 'zod';
import {
  descriptionSchema,
  nameSchema,
  oneOrMany,
  refOrAnySchema,
  refSchema,
  strictObject,
  zoneRefOrAnySchema,
} from './common.js';

const inlineHint = 'inline addresses are not allowed here; define one under objects.addresses';

export const zoneListSchema = oneOrMany(zoneRefOrAnySchema, 'a zone name').describe(
  'A zone name, "any", or a list of zone names.',
);

export const addressListSchema = oneOrMany(
  refOrAnySchema('an address or address set', inlineHint),
  'an address name',
).describe('"any", an address / address-set name, or a list of them.');

export const serviceListSchema = oneOrMany(
  refOrAnySchema('a service or service set'),
  'a service name',
).describe('"any", a service / service-set name (predefined ones included), or a list of them.');

const RATE_LIMIT_PATTERN = /^[1-9]\d*\/(second|minute|hour|day)$/;

export const securityRuleSchema = strictObject({
  name: nameSchema.describe('Unique rule name.'),
  description: descriptionSchema,
  disabled: z.boolean().default(false).describe('Keep the rule but do not apply it (default false).'),
  fromZones: zoneListSchema.describe('Zones the traffic enters from ("any" for every zone).'),
  toZones: zoneListSchema.describe('Zones the traffic leaves to ("any" for every zone).'),
  source: addressListSchema.describe('Source addresses: "any", address / address-set names.'),
  destination: addressListSchema.describe(
    'Destination addresses: "any", address / address-set names (after destination NAT).',
  ),
  service: serviceListSchema.describe('Services: "any", service / service-set names.'),
  schedule: refSchema('a schedule', 'defined under objects.schedules')
    .optional()
    .describe('Only match while this schedule is active.'),
  action: z
    .enum(['permit', 'deny', 'reject'])
    .describe('permit, deny (drop silently) or reject (RST / ICMP unreachable).'),
  utmPolicy: refSchema('a UTM policy', 'defined under utmPolicies')
    .optional()
    .describe('Inspect permitted traffic with this UTM policy (permit only).'),
  qosClass: refSchema('a QoS class', 'defined under qos.classes')
    .optional()
    .describe('Put permitted traffic in this QoS class (permit only).'),
  log: strictObject({
    sessionInit: z.boolean().default(false).describe('Log when a session starts.'),
    sessionClose: z
      .boolean()
      .default(false)
      .describe('Log when a session ends, with byte and packet counts.'),
  })
    .optional()
    .describe('Session logging.'),
  counter: z.boolean().default(false).describe('Keep packet and byte counters for the rule (default false).'),
  rateLimit: strictObject({
    rate: z
      .string()
      .regex(RATE_LIMIT_PATTERN, 'expected new connections per unit, e.g. "100/second" or "20/minute"')
      .describe('New connections per unit: "<n>/second|minute|hour|day".'),
    burst: z.number().int().positive().optional().describe('Connections allowed above the rate in a burst.'),
  })
    .optional()
    .describe('Limit the rate of new connections matching the rule.'),
}).meta({
  title: 'Security rule',
  description: 'from/to zones, source, destination, service, schedule → action.',
});

export const securityRulesSchema = z.array(securityRuleSchema).default([]).meta({
  title: 'Security rules',
  description: 'The ordered rule base: the first matching enabled rule decides; unmatched traffic is denied.',
});

export type SecurityRule = z.output<typeof securityRuleSchema>;
export type SecurityRules = z.output<typeof securityRulesSchema>;
