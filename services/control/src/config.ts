import { commaList, duration, port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { z } from 'zod';

export const controlConfigSchema = baseConfigSchema.extend({
  httpPort: port().default(9401),
  grpcHost: z.string().default('0.0.0.0'),
  grpcPort: port().default(50051),
  /** Also listen on this unix socket (the lab uses it so moatctl on the host reaches the gateway namespace). */
  grpcSocket: z.string().optional(),
  /** Services that must answer status; a missing one is reported as unreachable. */
  expectedServices: commaList().default(['control']),
  /** How long a status call waits for instances to answer. */
  statusWait: duration().default(500),
});
export type ControlConfig = z.infer<typeof controlConfigSchema>;

export const loadControlConfig = (env = process.env): ControlConfig =>
  loadServiceConfig('control', controlConfigSchema, env) as ControlConfig;
