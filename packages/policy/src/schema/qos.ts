/**
 * QoS: HTB shaping per interface (egress, and ingress through an IFB), with classes that security rules
 * put traffic into. Rates are normalised to bits per second.
 */
import { z } from 'zod';
import { descriptionSchema, interfaceNameSchema, nameSchema, refSchema, strictObject } from './common.js';
import { rateSchema } from './units.js';

export const qosInterfaceSchema = strictObject({
  description: descriptionSchema,
  egressRate: rateSchema.describe('Shaped egress rate: a little below the real uplink rate.'),
  ingressRate: rateSchema
    .optional()
    .describe('Shaped ingress rate (through an IFB); omit to leave ingress unshaped.'),
  defaultClass: refSchema('a QoS class', 'defined under qos.classes').describe(
    'Class for traffic that no rule classifies.',
  ),
}).meta({ title: 'QoS interface', description: 'A shaped interface.' });

export const qosClassSchema = strictObject({
  description: descriptionSchema,
  rate: rateSchema.describe('Guaranteed rate.'),
  ceil: rateSchema
    .optional()
    .describe('Rate the class may borrow up to (≥ rate; default: the interface rate).'),
  priority: z
    .number()
    .int()
    .min(0)
    .max(7)
    .default(4)
    .describe('HTB priority 0 (first) to 7 (last); default 4.'),
  interface: interfaceNameSchema
    .optional()
    .describe('Interface (a key of qos.interfaces) the class belongs to; default: every shaped interface.'),
}).meta({ title: 'QoS class', description: 'An HTB class: guaranteed rate, ceiling and priority.' });

export const qosSchema = strictObject({
  interfaces: z
    .record(interfaceNameSchema, qosInterfaceSchema)
    .default({})
    .describe('Shaped interfaces by name.'),
  classes: z
    .record(nameSchema, qosClassSchema)
    .default({})
    .describe('Classes by name, referenced by rules (qosClass).'),
}).meta({
  title: 'QoS',
  description:
    "Per-interface HTB shaping. The guaranteed rates of an interface's classes must fit its rates.",
});

export type QosInterface = z.output<typeof qosInterfaceSchema>;
export type QosClass = z.output<typeof qosClassSchema>;
export type Qos = z.output<typeof qosSchema>;
