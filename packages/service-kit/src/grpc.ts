/**
 * The gRPC servers of Moat services (control, tls-mediation): binding, and the shutdown step that
 * stops answering health checks, lets calls in flight finish, and forces the rest after a grace
 * period. A subpath (`@moat/service-kit/grpc`), so services without gRPC never load grpc-js.
 */
import { type Server, ServerCredentials } from '@grpc/grpc-js';
import type { ShutdownStep } from './shutdown.js';

/** Binds `server` (insecure) to `address` (`host:port` or `unix:///path`); resolves with the bound port. */
export function bindGrpc(server: Server, address: string): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

/** grpc.health.v1 as grpc-health-check implements it (only what shutdown needs). */
export interface GrpcHealth {
  setStatus(service: string, status: 'NOT_SERVING'): void;
}

/** Health NOT_SERVING, then `tryShutdown`; calls still running after `graceMs` are cut. */
export function grpcShutdownStep(server: Server, health: GrpcHealth, graceMs = 8000): ShutdownStep {
  return {
    name: 'stop gRPC server',
    run: () =>
      new Promise<void>((resolve) => {
        health.setStatus('', 'NOT_SERVING');
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}
