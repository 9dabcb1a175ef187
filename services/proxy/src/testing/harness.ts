/**
 * Runs the real proxy process against real NATS and Redis, with a policy stored the way control
 * stores it, and an origin server that records what reached it. Used by the integration tests and
 * the fuzz script.
 */
import { type Agent, createServer, type IncomingMessage, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { type Bus, connectBus } from '@moat/bus';
import { createLogger } from '@moat/log';
import { announcePolicyChange, type PolicyStore, parsePolicyText, PolicyStore as Store } from '@moat/policy';
import {
  freePort,
  type ManagedProcess,
  type NatsServer,
  type RedisServer,
  startNats,
  startProcess,
  startRedis,
  tcpOpen,
  waitFor,
} from '@moat/testkit';
import { Redis } from 'ioredis';

export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export interface Origin {
  port: number;
  server: Server;
  /** Every request the origin received, complete with its body. */
  requests: SeenRequest[];
  /** TCP connections accepted (a smuggling test wants zero, not just zero complete requests). */
  connections: number;
  close(): Promise<void>;
}

type Route = (req: IncomingMessage, body: Buffer, res: import('node:http').ServerResponse) => void;

/** An origin with a few routes tests need; `extra` routes win. */
export async function startOrigin(extra: Record<string, Route> = {}): Promise<Origin> {
  const requests: SeenRequest[] = [];
  const origin = { requests, connections: 0 } as Origin;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      const route = extra[path];
      if (route) return route(req, body, res);
      const bytes = /^\/bytes\/(\d+)$/.exec(path);
      if (bytes) {
        const n = Number(bytes[1]);
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
        return res.end(Buffer.alloc(n, 'x'));
      }
      if (path === '/echo') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(
          JSON.stringify({ method: req.method, url: req.url, headers: req.headers, bodyLength: body.length }),
        );
      }
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<html><body>origin</body></html>');
    });
  });
  server.on('connection', () => {
    origin.connections++;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin.port = (server.address() as AddressInfo).port;
  origin.server = server;
  origin.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return origin;
}

export interface ProxyHarness {
  proxyPort: number;
  httpPort: number;
  nats: NatsServer;
  redis: RedisServer;
  store: PolicyStore;
  bus: Bus;
  proc: ManagedProcess;
  /** Validates and stores a policy, announces it, and waits until the proxy runs it. */
  applyPolicy(yaml: string): Promise<number>;
  /** Every event published on events.> since the harness started. */
  events: Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

const MAIN = fileURLToPath(new URL('../main.js', import.meta.url));

/** A policy whose one security rule permits everything, with no inspection: plain forwarding. */
export const permitAllPolicy = (name: string): string => `
apiVersion: moat/v1
kind: Policy
metadata: { name: ${name} }
securityRules:
  - { name: all, fromZones: any, toZones: any, source: any, destination: any, service: any, action: permit }
`;

/** Parses a policy for tests; throws with the violations when it is invalid. */
export function policyFrom(yaml: string) {
  const parsed = parsePolicyText(yaml, 'test-policy.yaml');
  if (!parsed.ok) throw new Error(`test policy is invalid: ${JSON.stringify(parsed.violations, null, 2)}`);
  return parsed.policy;
}

export async function startProxyHarness(opts: {
  policy: string;
  env?: Record<string, string>;
}): Promise<ProxyHarness> {
  const nats = await startNats();
  const redis = await startRedis();
  const redisClient = new Redis(redis.url, { lazyConnect: true });
  await redisClient.connect();
  const store = new Store(redisClient);
  const bus = await connectBus({
    servers: nats.url,
    name: 'proxy-test',
    log: createLogger({ service: 'proxy-test', level: 'silent' }),
  });
  const events: Array<Record<string, unknown>> = [];
  bus.subscribe<Record<string, unknown>>('events.>', (msg) => {
    events.push(msg.data);
  });
  await store.apply(policyFrom(opts.policy), { author: 'test' });

  const proxyPort = await freePort();
  const httpPort = await freePort();
  const proc = startProcess('proxy', process.execPath, [MAIN], {
    env: {
      ...process.env,
      MOAT_NATS_URL: nats.url,
      MOAT_REDIS_URL: redis.url,
      MOAT_LOG_LEVEL: 'warn',
      MOAT_PROXY_LISTEN_HOST: '127.0.0.1',
      MOAT_PROXY_PORT: String(proxyPort),
      MOAT_PROXY_HTTP_PORT: String(httpPort),
      MOAT_PROXY_TRANSPARENT_HTTP_PORT: '0',
      MOAT_PROXY_TRANSPARENT_TLS_PORT: '0',
      MOAT_PROXY_ACCESS_LOG: 'off',
      ...opts.env,
    },
  });
  const stopAll = async () => {
    await proc.stop();
    await bus.drain().catch(() => undefined);
    redisClient.disconnect();
    await redis.stop();
    await nats.stop();
  };
  try {
    await waitFor('proxy listening', () => tcpOpen(proxyPort), { proc, timeoutMs: 20_000 });
  } catch (err) {
    await stopAll(); // a failed start must not leave servers that keep the test runner alive
    throw err;
  }

  const appliedVersion = async () => {
    const res = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
    const match = /^moat_policy_applied_version\{[^}]*\} (\d+)/m.exec(await res.text());
    return Number(match?.[1] ?? 0);
  };
  return {
    proxyPort,
    httpPort,
    nats,
    redis,
    store,
    bus,
    proc,
    events,
    async applyPolicy(yaml) {
      const result = await store.apply(policyFrom(yaml), { author: 'test' });
      announcePolicyChange(bus, { version: result.version, sha256: result.info.sha256 });
      await waitFor(
        `proxy applies v${result.version}`,
        async () => (await appliedVersion()) >= result.version,
        {
          proc,
          timeoutMs: 5000,
        },
      );
      return result.version;
    },
    stop: stopAll,
  };
}

/** Sends raw bytes to a port and collects everything until the server closes (or the timeout). */
export function rawExchange(port: number, payload: string | Buffer, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.once('close', done);
    socket.once('error', done);
    socket.write(payload);
  });
}

/** Status code of the first response in raw text, or 0. */
export const statusOf = (raw: string): number => Number(/^HTTP\/1\.[01] (\d{3})/.exec(raw)?.[1] ?? 0);

export interface ProxiedReply {
  status: number;
  headers: import('node:http').IncomingHttpHeaders;
  body: Buffer;
  /** The response started but did not complete (the proxy or the upstream cut it). */
  cut: boolean;
  ms: number;
  /** X-Moat-Trace-Id, or ''. */
  traceId: string;
}

/** A request through the explicit proxy (absolute-form), with Node's own HTTP client. */
export function viaProxy(
  proxyPort: number,
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string; agent?: Agent } = {},
): Promise<ProxiedReply> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port: proxyPort,
        method: opts.method ?? 'GET',
        path: url,
        headers: { host: new URL(url).host, ...opts.headers },
        agent: opts.agent ?? false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        const done = (cut: boolean) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            cut,
            ms: Date.now() - started,
            traceId: String(res.headers['x-moat-trace-id'] ?? ''),
          });
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(false));
        res.on('error', () => done(true));
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
