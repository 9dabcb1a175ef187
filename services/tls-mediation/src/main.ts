// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import { startServiceKit } from '@moat/service-kit';
import { bindGrpc, grpcShutdownStep, mutualTlsServerCredentials } from '@moat/service-kit/grpc';
import { Counter, Registry } from 'prom-client';
import { loadOrCreateCa } from './ca.js';
import { createCaServer } from './ca-http.js';
import { grpcTlsFiles, loadTlsMediationConfig } from './config.js';
import { LeafCache } from './leaf-cache.js';
import { createTlsMediationServer } from './server.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';

async function main() {
  const config = loadTlsMediationConfig();
  if ((config.caCertFile === undefined) !== (config.caKeyFile === undefined)) {
    throw new ConfigError('tls-mediation', [
      {
        key:
          config.caCertFile === undefined
            ? 'MOAT_TLS_MEDIATION_CA_CERT_FILE'
            : 'MOAT_TLS_MEDIATION_CA_KEY_FILE',
        message:
          'missing: the CA certificate and key files go together (set both to import a CA, or neither to use the one in MOAT_TLS_MEDIATION_DATA_DIR)',
      },
    ]);
  }
  const tls = grpcTlsFiles(config);
  const log = createLogger({ service: 'tls-mediation', level: config.logLevel });
  const registry = new Registry();
  const ca = await loadOrCreateCa(
    config.caCertFile && config.caKeyFile
      ? { certFile: config.caCertFile, keyFile: config.caKeyFile }
      : { dir: config.dataDir },
  );
  log.info(
    { origin: ca.origin, subject: ca.certificate.subject, notAfter: ca.certificate.notAfter.toISOString() },
    `interception CA ${ca.origin}`,
  );
  const leaves = new Counter({
    name: 'moat_tls_leaf_certificates_total',
    help: 'Leaf certificates handed to the proxy, by where they came from (memory, redis, issued)',
    labelNames: ['source'],
    registers: [registry],
  });

  // tls-mediation enforces no policy of its own yet: bump/splice decisions are the proxy's
  const kit = await startServiceKit({
    service: 'tls-mediation',
    version: VERSION,
    config,
    log,
    registry,
    applyPolicy: () => undefined,
    details: () => ({
      ca: {
        origin: ca.origin,
        subject: ca.certificate.subject,
        notAfter: ca.certificate.notAfter.toISOString(),
      },
    }),
  });
  const cache = new LeafCache({ ca, redis: kit.redis });
  const { server, health } = createTlsMediationServer({
    ca,
    cache,
    leafHours: config.leafHours,
    log,
    onIssued: (source) => leaves.inc({ source }),
  });
  if (!tls)
    kit.log.warn(
      { grpcPort: config.grpcPort },
      'the gRPC port is plaintext and unauthenticated: anything that reaches it can have certificates minted; set MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE, _KEY_FILE and _CLIENT_CA_FILE unless it only listens on loopback',
    );
  const grpcPort = await bindGrpc(
    server,
    `${config.grpcHost}:${config.grpcPort}`,
    tls ? mutualTlsServerCredentials(tls) : undefined,
  );
  const caServer = createCaServer(ca);
  await new Promise<void>((resolve, reject) => {
    caServer.once('error', reject);
    caServer.listen(config.caPort, config.caHost, resolve);
  });
  kit.onShutdown({ name: 'stop the CA server', run: () => void caServer.close() });
  kit.onShutdown(grpcShutdownStep(server, health));
  kit.log.info({ grpcPort, caPort: config.caPort, httpPort: kit.httpPort }, 'tls-mediation ready');
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `tls-mediation failed to start: ${(err as Error).message}`,
  );
  process.exit(1);
});
