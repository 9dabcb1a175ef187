// first: V8 settings that must precede everything else (see service-kit/runtime.ts)
import '@moat/service-kit/runtime';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { getCACertificates } from 'node:tls';
import { ConfigError } from '@moat/config';
import { createLogger } from '@moat/log';
import { ScanClient } from '@moat/scan';
import {
  installShutdown,
  isWorkerProcess,
  signalWorkers,
  startServiceKit,
  superviseWorkers,
  workerIndex,
} from '@moat/service-kit';
import { mutualTlsChannelCredentials, mutualTlsFiles } from '@moat/service-kit/grpc';
import { Registry } from 'prom-client';
import { AntivirusStage } from './antivirus/stage.js';
import { loadProxyConfig, type ProxyConfig } from './config.js';
import { ProxyEngine } from './engine.js';
import { createProxyMetrics } from './observe/metrics.js';
import { createRecorder } from './observe/recorder.js';
import type { ProxyDeps } from './pipeline.js';
import { RouteTable } from './policy/routes.js';
import { createProxyServers } from './server.js';
import { CertificateSource } from './tls/certificates.js';
import { UpstreamTrust } from './tls/upstream-tls.js';
import { DnsCache } from './upstream/dns.js';
import { Upstream } from './upstream/upstream.js';

const VERSION = process.env.MOAT_VERSION ?? '0.1.0';
/** How long in-flight requests get to finish on shutdown before their connections are cut. */
const DRAIN_MS = 10_000;
/** How long stopping the workers may take, beyond which the supervisor's shutdown step gives up. */
const WORKERS_STOP_MS = 40_000;

function listen(
  server: Server,
  port: number,
  host: string,
  what: string,
  reusePort: boolean,
): Promise<number> {
  // a worker binds its own socket (exclusive: not through the cluster supervisor) beside its siblings
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `${what} port ${host}:${port} is already in use; stop the other process or set another port`
            : `cannot listen on ${host}:${port} (${what}): ${err.message}`,
        ),
      ),
    );
    server.listen({ port, host, reusePort, exclusive: isWorkerProcess() }, () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

function closeServer(
  server: Server & { closeIdleConnections?: () => void; closeAllConnections?: () => void },
): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    const force = setTimeout(() => {
      server.closeAllConnections?.();
      resolve();
    }, DRAIN_MS);
    server.close(() => {
      clearTimeout(force);
      resolve();
    });
    server.closeIdleConnections?.();
  });
}

/** MOAT_PROXY_WORKERS > 1: this process runs no proxy itself, it supervises the workers. */
async function supervise(config: ProxyConfig) {
  if (config.port === 0)
    throw new Error(
      'MOAT_PROXY_WORKERS > 1 needs a fixed MOAT_PROXY_PORT: with port 0 every worker would listen on a different port',
    );
  const log = createLogger({ service: 'proxy', level: config.logLevel });
  const supervisor = await superviseWorkers({
    service: 'proxy',
    workers: config.workers,
    httpHost: config.httpHost,
    httpPort: config.httpPort,
    log,
  });
  // one step, long enough for every worker's own drain (the supervisor kills a worker that overruns)
  installShutdown(log, () => [{ name: 'stop workers', run: () => supervisor.stop() }], WORKERS_STOP_MS);
  process.on('SIGHUP', () => signalWorkers('SIGHUP'));
  try {
    await supervisor.ready();
  } catch (err) {
    await supervisor.stop();
    throw err;
  }
  log.info({ workers: config.workers, httpPort: supervisor.httpPort }, 'proxy ready');
}

async function serve(config: ProxyConfig) {
  // workers of one supervisor share the configured instance id (e.g. the pod name): tell them apart
  if (isWorkerProcess()) config.instanceId = `${config.instanceId}-w${workerIndex()}`;
  const mediationTls = tlsMediationFiles(config);
  const log = createLogger({ service: 'proxy', level: config.logLevel });
  if (!mediationTls)
    log.warn(
      { address: config.tlsMediationAddress },
      'the channel to tls-mediation is plaintext: set MOAT_PROXY_TLS_MEDIATION_CA_FILE, _CERT_FILE and _KEY_FILE unless it is on loopback',
    );
  const registry = new Registry();
  const metrics = createProxyMetrics(registry);
  const engine = new ProxyEngine(log, metrics);
  const kit = await startServiceKit({
    service: 'proxy',
    version: VERSION,
    config,
    log,
    registry,
    applyPolicy: (record) => engine.apply(record),
    details: () => engine.details(),
  });

  const upstream = new Upstream({
    connectTimeoutMs: config.connectTimeout,
    idleBodyTimeoutMs: config.upstreamIdleBodyTimeout,
    keepAliveTimeoutMs: config.upstreamIdleTimeout,
    connectionsPerOrigin: config.upstreamConnectionsPerOrigin,
    maxResponseHeaderSize: Math.max(config.maxHeaderSize, 64 * 1024),
  });
  const recorder = createRecorder(
    {
      accessLog: config.accessLog,
      accessLogFormat: config.accessLogFormat,
      eventsAllowed: config.eventsAllowed,
      instance: config.instanceId,
      sharedOutput: isWorkerProcess(),
    },
    { bus: kit.bus, log, metrics },
  );
  const certificates = new CertificateSource({
    address: config.tlsMediationAddress,
    deadlineMs: config.tlsMediationTimeout,
    ...(mediationTls ? { credentials: mutualTlsChannelCredentials(mediationTls) } : {}),
  });
  const trust = new UpstreamTrust(getCACertificates('system'), readUpstreamCas(config.upstreamCaFiles));
  const scanner = new ScanClient({ nc: kit.bus.nc, redis: kit.redis });
  const deps: ProxyDeps = {
    config,
    antivirus: new AntivirusStage({
      scanner,
      bus: kit.bus,
      metrics,
      log,
      instance: config.instanceId,
      holdLimit: config.avHoldLimit,
    }),
    log,
    metrics,
    recorder,
    dns: new DnsCache(config.dnsCacheTtl, config.dnsNegativeTtl),
    upstream,
    routes: new RouteTable(),
    tls: { certificates, trust },
    policy: () => engine.policy(),
    categorizer: () => engine.categorizer(),
  };
  const servers = createProxyServers(deps);
  const bound: Record<string, number> = {};
  const listeners: Server[] = [];
  const wanted = [
    { name: 'explicit', server: servers.explicit, port: config.port, what: 'explicit proxy' },
    {
      name: 'transparentHttp',
      server: servers.transparentHttp,
      port: config.transparentHttpPort,
      what: 'intercepted HTTP',
    },
    {
      name: 'transparentTls',
      server: servers.transparentTls,
      port: config.transparentTlsPort,
      what: 'intercepted TLS',
    },
  ];
  for (const { name, server, port, what } of wanted) {
    // port 0 turns an interception listener off (the explicit port is always on)
    if (port === 0 && name !== 'explicit') continue;
    bound[name] = await listen(server, port, config.listenHost, what, config.reusePort || isWorkerProcess());
    listeners.push(server);
  }

  engine.watchLists(config.listReloadInterval);
  process.on('SIGHUP', () => void engine.reloadLists('SIGHUP'));

  kit.onShutdown({
    name: 'stop proxy listeners and drain requests',
    run: async () => {
      engine.stop();
      await Promise.all(listeners.map((server) => closeServer(server)));
    },
  });
  kit.onShutdown({ name: 'close upstream connections', run: () => upstream.close() });
  kit.onShutdown({ name: 'stop waiting for antivirus verdicts', run: () => scanner.close() });
  kit.onShutdown({ name: 'close the tls-mediation channel', run: () => certificates.close() });
  kit.onShutdown({ name: 'flush access log', run: () => recorder.close() });
  kit.announceReady();
  log.info(
    {
      ...bound,
      listenHost: config.listenHost,
      ...(isWorkerProcess() ? { worker: workerIndex() } : { httpPort: kit.httpPort }),
      policyVersion: engine.policy()?.version ?? 0,
    },
    'proxy ready',
  );
}

/** The deployment's extra upstream CAs: a file that cannot be read stops the start, saying which. */
function readUpstreamCas(files: readonly string[]): string[] {
  return files.map((file) => {
    try {
      const text = readFileSync(file, 'utf8');
      if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no PEM certificate in it');
      return text;
    } catch (err) {
      throw new Error(`MOAT_PROXY_UPSTREAM_CA_FILES: cannot use ${file}: ${(err as Error).message}`);
    }
  });
}

const tlsMediationFiles = (config: ProxyConfig) =>
  mutualTlsFiles('proxy', {
    caFile: { env: 'MOAT_PROXY_TLS_MEDIATION_CA_FILE', value: config.tlsMediationCaFile },
    certFile: { env: 'MOAT_PROXY_TLS_MEDIATION_CERT_FILE', value: config.tlsMediationCertFile },
    keyFile: { env: 'MOAT_PROXY_TLS_MEDIATION_KEY_FILE', value: config.tlsMediationKeyFile },
  });

async function main() {
  const config = loadProxyConfig();
  tlsMediationFiles(config); // a partial set fails here, before any worker starts
  if (config.workers > 1 && !isWorkerProcess()) await supervise(config);
  else await serve(config);
}

main().catch((err: unknown) => {
  console.error(
    err instanceof ConfigError ? err.message : `proxy failed to start: ${(err as Error).message}`,
  );
  process.exit(1);
});
