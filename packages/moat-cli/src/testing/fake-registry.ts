import type { ServiceDefinition } from '../services.js';

/** A registry holding only the fake service (dist/testing/fake-service.js of this package). */
export const FAKE_SERVICE: ServiceDefinition = {
  name: 'fake',
  packageDir: 'packages/moat-cli',
  entry: 'dist/testing/fake-service.js',
  // Not 9401/50051: the lab's gw namespace may also run the real control.
  defaultPorts: { http: 9499 },
  env: (ctx) => ({
    MOAT_FAKE_HTTP_PORT: String(ctx.ports.http),
    MOAT_NATS_URL: ctx.natsUrl,
    MOAT_REDIS_URL: ctx.redisUrl,
    MOAT_FAKE_EXPECTED_SERVICES: ctx.expectedServices.join(','),
    MOAT_LOG_LEVEL: ctx.logLevel,
    ...(ctx.socketDir ? { MOAT_FAKE_SOCKET_DIR: ctx.socketDir } : {}),
  }),
};
