// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { rmSync } from 'node:fs';
import { consumers, ensureConsumers, ensureStreams, streams } from '@moat/bus';
import { ConfigError } from '@moat/config';
import { startServiceKit } from '@moat/service-kit';
import { bindGrpc, grpcShutdownStep } from '@moat/service-kit/grpc';
import { ControlApi } from './api.js';
import { loadControlConfig } from './config.js';
import { createControlServer } from './server.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';

async function main() {
  const config = loadControlConfig();
  // control is the writer, not an engine: "applying" a policy here means knowing it is current.
  const kit = await startServiceKit({
    service: 'control',
    version: VERSION,
    config,
    applyPolicy: () => undefined,
  });
  // control declares the JetStream topology once for everyone (idempotent on every start).
  const jsm = await kit.bus.jetstreamManager();
  await ensureStreams(jsm, Object.values(streams));
  await ensureConsumers(jsm, Object.values(consumers));

  const api = new ControlApi({
    store: kit.store,
    bus: kit.bus,
    log: kit.log,
    expectedServices: config.expectedServices,
    statusWaitMs: config.statusWait,
  });
  const { server, health } = createControlServer(api, kit.log);
  const grpcPort = await bindGrpc(server, `${config.grpcHost}:${config.grpcPort}`);
  if (config.grpcSocket) {
    rmSync(config.grpcSocket, { force: true }); // a stale socket from a killed run blocks the bind
    await bindGrpc(server, `unix://${config.grpcSocket}`);
  }
  kit.onShutdown(grpcShutdownStep(server, health));
  kit.log.info({ grpcPort, grpcSocket: config.grpcSocket, httpPort: kit.httpPort }, 'control ready');
}

main().catch((err: unknown) => {
  // Startup errors go to stderr plainly: the operator needs the message, not a stack of JSON.
  console.error(
    err instanceof ConfigError ? err.message : `control failed to start: ${(err as Error).message}`,
  );
  process.exit(1);
});
