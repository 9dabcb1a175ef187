import { port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { z } from 'zod';

/** Every MOAT_QOS_* setting. */
export const qosConfigSchema = baseConfigSchema.extend({
  /** Health, readiness and metrics. */
  httpPort: port().default(9404),
  /**
   * Manage the qdiscs of this network namespace (`ip netns exec <name> tc`) rather than this
   * process's own; for a gateway namespace on a shared host. Default: the process's namespace.
   */
  /**
   * Seconds between checks that the kernel still holds the trees (an interface recreated by PPPoE
   * or a VPN, a qdisc deleted by hand); lost trees are written again. 0: never.
   */
  recheckSeconds: z.coerce.number().int().min(0).max(3600).default(30),
  netns: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a network namespace name (see `ip netns list`)')
    .optional(),
});
export type QosConfig = z.infer<typeof qosConfigSchema>;

export const loadQosConfig = (env = process.env): QosConfig =>
  loadServiceConfig('qos', qosConfigSchema, env) as QosConfig;
