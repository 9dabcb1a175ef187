/** Security zones: named groups of interfaces that security, NAT and VPN rules refer to. */
import { z } from 'zod';
import {
  descriptionSchema,
  interfaceNameSchema,
  oneOrMany,
  refSchema,
  strictObject,
  zoneNameSchema,
} from './common.js';

export const zoneSchema = strictObject({
  description: descriptionSchema,
  interfaces: oneOrMany(interfaceNameSchema, 'an interface name', true)
    .default([])
    .describe(
      'Interfaces bound to the zone. An interface belongs to at most one zone. ' +
        'The vpn zone may have none: decrypted IPsec traffic enters it by policy match.',
    ),
  hostInboundServices: oneOrMany(
    refSchema('a service or service set', 'e.g. ssh, ping, dns, ike'),
    'a service name',
    true,
  )
    .default([])
    .describe(
      "Services the gateway itself answers on this zone's interfaces (e.g. ssh, ping, dns, ike, esp).",
    ),
}).meta({ title: 'Zone', description: 'A security zone: a named set of interfaces.' });

export const zonesSchema = z.record(zoneNameSchema, zoneSchema).default({}).meta({
  title: 'Zones',
  description: 'Security zones by name (e.g. lan, wan, dmz, vpn). Names: [a-z][a-z0-9-]*.',
});

export type Zone = z.output<typeof zoneSchema>;
export type Zones = z.output<typeof zonesSchema>;
