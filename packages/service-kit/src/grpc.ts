/**
 * The gRPC servers of Moat services (control, tls-mediation): binding, and the shutdown step that
 * stops answering health checks, lets calls in flight finish, and forces the rest after a grace
 * period. A subpath (`@moat/service-kit/grpc`), so services without gRPC never load grpc-js.
 */
import { readFileSync } from 'node:fs';
import { type ChannelCredentials, credentials, type Server, ServerCredentials } from '@grpc/grpc-js';
import { ConfigError } from '@moat/config';
import type { ShutdownStep } from './shutdown.js';

/**
 * Binds `server` to `address` (`host:port` or `unix:///path`); resolves with the bound port.
 * Without `serverCredentials` the port is plaintext and unauthenticated.
 */
export function bindGrpc(
  server: Server,
  address: string,
  serverCredentials: ServerCredentials = ServerCredentials.createInsecure(),
): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, serverCredentials, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

/** PEM files for one side of a mutually authenticated TLS channel. */
export interface MutualTlsFiles {
  /** The CA the other side's certificate must chain to. */
  caFile: string;
  certFile: string;
  keyFile: string;
}

type MutualTlsSettings = Record<keyof MutualTlsFiles, { env: string; value: string | undefined }>;

/** The files when all three are set, undefined when none is; a partial set is a ConfigError naming what is missing. */
export function mutualTlsFiles(service: string, settings: MutualTlsSettings): MutualTlsFiles | undefined {
  const all = Object.values(settings);
  const missing = all.filter((setting) => !setting.value);
  if (missing.length === all.length) return undefined;
  if (missing.length > 0)
    throw new ConfigError(
      service,
      missing.map(({ env }) => ({
        key: env,
        message: `missing: mutual TLS needs all of ${all.map((setting) => setting.env).join(', ')}, or none of them (plaintext, for loopback only)`,
      })),
    );
  return {
    caFile: settings.caFile.value as string,
    certFile: settings.certFile.value as string,
    keyFile: settings.keyFile.value as string,
  };
}

/** Server credentials that refuse any client without a certificate from `caFile`. */
export function mutualTlsServerCredentials(files: MutualTlsFiles): ServerCredentials {
  return ServerCredentials.createSsl(
    readFileSync(files.caFile),
    [{ cert_chain: readFileSync(files.certFile), private_key: readFileSync(files.keyFile) }],
    true,
  );
}

/** Client credentials: the server must present a certificate from `caFile` for the dialled name. */
export function mutualTlsChannelCredentials(files: MutualTlsFiles): ChannelCredentials {
  return credentials.createSsl(
    readFileSync(files.caFile),
    readFileSync(files.keyFile),
    readFileSync(files.certFile),
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
