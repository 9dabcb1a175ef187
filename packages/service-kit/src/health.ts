import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A named readiness condition; resolves to true when ready, or a reason string when not. */
export type ReadinessCheck = () => Promise<true | string> | true | string;

export interface HealthServer {
  readonly server: Server;
  listen(port: number, host: string): Promise<number>;
  addCheck(name: string, check: ReadinessCheck): void;
  /** Runs every check; `ready` is false while shutting down or when any check fails. */
  readiness(): Promise<{ ready: boolean; checks: Record<string, string> }>;
  /** Readiness goes false at once (first step of a graceful shutdown). */
  setShuttingDown(): void;
  close(): Promise<void>;
}

const CHECK_TIMEOUT_MS = 1000;

async function runCheck(check: ReadinessCheck): Promise<string> {
  try {
    const result = await Promise.race([
      Promise.resolve(check()),
      new Promise<string>((r) => setTimeout(() => r('check timed out'), CHECK_TIMEOUT_MS).unref()),
    ]);
    return result === true ? 'ok' : result;
  } catch (err) {
    return (err as Error).message;
  }
}

/** What `/metrics` serves: a prom-client Registry, or anything that renders the same way. */
export interface MetricsSource {
  readonly contentType: string;
  metrics(): Promise<string>;
}

/** `/healthz` (alive), `/readyz` (able to serve), `/metrics` (Prometheus). */
export function createHealthServer(registry: MetricsSource): HealthServer {
  const checks = new Map<string, ReadinessCheck>();
  let shuttingDown = false;

  const readiness = async () => {
    const names = [...checks.keys()];
    const results = await Promise.all(names.map((n) => runCheck(checks.get(n) as ReadinessCheck)));
    const out = Object.fromEntries(names.map((n, i) => [n, results[i] as string]));
    if (shuttingDown) out.shutdown = 'shutting down';
    return { ready: Object.values(out).every((v) => v === 'ok'), checks: out };
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const json = (status: number, body: unknown) =>
      void res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
    if (req.method !== 'GET' && req.method !== 'HEAD') json(405, { error: 'use GET' });
    else if (path === '/healthz') json(200, { status: 'ok' });
    else if (path === '/readyz') void readiness().then((r) => json(r.ready ? 200 : 503, r));
    else if (path === '/metrics')
      void registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (err: Error) => json(500, { error: err.message }),
      );
    else json(404, { error: 'not found', endpoints: ['/healthz', '/readyz', '/metrics'] });
  });

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
      }),
    addCheck: (name, check) => void checks.set(name, check),
    readiness,
    setShuttingDown: () => {
      shuttingDown = true;
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
