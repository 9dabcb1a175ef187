import { hostname } from 'node:os';
import { loadConfig, port, url } from '@moat/config';
import { z } from 'zod';

/** Settings every service has; a service extends this schema with its own keys. */
export const baseConfigSchema = z.object({
  natsUrl: url('nats', 'tls').default('nats://127.0.0.1:4222'),
  redisUrl: url('redis', 'rediss').default('redis://127.0.0.1:6379'),
  httpHost: z.string().default('0.0.0.0'),
  httpPort: port(),
  instanceId: z.string().default(`${hostname()}-${process.pid}`),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type BaseConfig = z.infer<typeof baseConfigSchema>;

/**
 * Reads `MOAT_<SERVICE>_*` plus the shared `MOAT_NATS_URL`, `MOAT_REDIS_URL`, `MOAT_LOG_LEVEL`
 * and `MOAT_INSTANCE_ID`; throws one ConfigError naming every bad variable.
 */
export function loadServiceConfig<S extends z.ZodObject>(service: string, schema: S, source = process.env) {
  return loadConfig({
    service,
    schema: schema.strict(),
    prefix: `MOAT_${service.toUpperCase().replaceAll('-', '_')}_`,
    env: {
      natsUrl: 'MOAT_NATS_URL',
      redisUrl: 'MOAT_REDIS_URL',
      logLevel: 'MOAT_LOG_LEVEL',
      instanceId: 'MOAT_INSTANCE_ID',
    } as never,
    source,
  });
}
