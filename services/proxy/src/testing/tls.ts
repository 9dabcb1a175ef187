/**
 * TLS pieces for the bumping tests: a test PKI made with the openssl CLI (an "upstream" CA and
 * server certificates), HTTPS origins, the real tls-mediation service, and curl as the client.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import { createRequire } from 'node:module';
import { type AddressInfo, connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, type TlsOptions, connect as tlsConnect } from 'node:tls';
import { freePort, type ManagedProcess, runCommand, startProcess, waitFor } from '@moat/testkit';
import { createPrivateCa } from '@moat/x509/pki';

export interface TestPki {
  dir: string;
  /** The CA that signs the test origins (trusted by the proxy through MOAT_PROXY_UPSTREAM_CA_FILES). */
  caFile: string;
  /** A certificate and key for `names` signed by the CA, or self-signed. */
  issue(
    name: string,
    names: string[],
    opts?: { selfSigned?: boolean },
  ): Promise<{ cert: string; key: string }>;
  remove(): void;
}

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(args: string[]): Promise<void> {
  const result = await runCommand('openssl', args);
  if (result.code !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
}

const sanOf = (names: string[]) => names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');

export async function createTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-bump-pki-'));
  const caFile = join(dir, 'upstream-ca.crt');
  const caKey = join(dir, 'upstream-ca.key');
  await openssl([
    'req',
    '-x509',
    ...EC,
    '-keyout',
    caKey,
    '-out',
    caFile,
    '-days',
    '2',
    '-subj',
    '/CN=Moat test upstream CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign',
  ]);
  return {
    dir,
    caFile,
    async issue(name, names, opts = {}) {
      const cert = join(dir, `${name}.crt`);
      const key = join(dir, `${name}.key`);
      if (opts.selfSigned) {
        await openssl([
          'req',
          '-x509',
          ...EC,
          '-keyout',
          key,
          '-out',
          cert,
          '-days',
          '2',
          '-subj',
          `/CN=${names[0]}`,
          '-addext',
          `subjectAltName=${sanOf(names)}`,
        ]);
      } else {
        const csr = join(dir, `${name}.csr`);
        const ext = join(dir, `${name}.ext`);
        writeFileSync(ext, `subjectAltName=${sanOf(names)}\nextendedKeyUsage=serverAuth\n`);
        await openssl(['req', '-new', ...EC, '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
        await openssl([
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          caFile,
          '-CAkey',
          caKey,
          '-CAcreateserial',
          '-days',
          '2',
          '-extfile',
          ext,
          '-out',
          cert,
        ]);
      }
      return { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8') };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface TlsOrigin {
  port: number;
  server: Server;
  /** Paths requested, in order. */
  paths: string[];
  close(): Promise<void>;
}

/** An HTTPS origin on 127.0.0.1: `/echo` answers what it saw, anything else "origin <path>". */
export async function startTlsOrigin(
  credentials: { cert: string; key: string },
  tls: TlsOptions = {},
  /** Serves a path itself (return true), before the default answers. */
  route?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<TlsOrigin> {
  const paths: string[] = [];
  const server = createServer({ ...credentials, ...tls }, (req, res) => {
    paths.push(req.url ?? '');
    if (route?.(req, res)) return;
    const body =
      req.url === '/echo'
        ? JSON.stringify({
            host: req.headers.host,
            via: req.headers.via,
            servername: (req.socket as { servername?: string }).servername,
          })
        : `origin ${req.url}`;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    server,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TlsMediation {
  grpcPort: number;
  caPort: number;
  /** The Moat CA certificate, as served on /ca.pem. */
  caFile: string;
  proc: ManagedProcess;
  /** Stops the process (restart() brings it back with the same CA). */
  stop(): Promise<void>;
  restart(): Promise<void>;
  /** Stops it and deletes its data directory. */
  remove(): Promise<void>;
}

const require = createRequire(import.meta.url);
const TLS_MEDIATION_MAIN = join(require.resolve('@moat/tls-mediation/package.json'), '..', 'dist', 'main.js');

/** The real tls-mediation service, on `grpcPort` (chosen before the proxy starts, so it can be told). */
export async function startTlsMediation(opts: {
  grpcPort: number;
  natsUrl: string;
  redisUrl: string;
  /** Mutual TLS on the gRPC port (see serviceTls). */
  grpcTls?: ServiceTls['mediation'];
}): Promise<TlsMediation> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-bump-ca-'));
  const httpPort = await freePort();
  const caPort = await freePort();
  const env = {
    ...process.env,
    MOAT_NATS_URL: opts.natsUrl,
    MOAT_REDIS_URL: opts.redisUrl,
    MOAT_LOG_LEVEL: 'warn',
    MOAT_TLS_MEDIATION_HTTP_PORT: String(httpPort),
    MOAT_TLS_MEDIATION_GRPC_HOST: '127.0.0.1',
    MOAT_TLS_MEDIATION_GRPC_PORT: String(opts.grpcPort),
    MOAT_TLS_MEDIATION_CA_HOST: '127.0.0.1',
    MOAT_TLS_MEDIATION_CA_PORT: String(caPort),
    MOAT_TLS_MEDIATION_DATA_DIR: join(dir, 'data'),
    ...(opts.grpcTls
      ? {
          MOAT_TLS_MEDIATION_GRPC_TLS_CERT_FILE: opts.grpcTls.certFile,
          MOAT_TLS_MEDIATION_GRPC_TLS_KEY_FILE: opts.grpcTls.keyFile,
          MOAT_TLS_MEDIATION_GRPC_CLIENT_CA_FILE: opts.grpcTls.caFile,
        }
      : {}),
  };
  const start = async () => {
    const proc = startProcess('tls-mediation', process.execPath, [TLS_MEDIATION_MAIN], { env });
    await waitFor(
      'tls-mediation ready',
      async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok,
      {
        proc,
        timeoutMs: 20_000,
      },
    );
    return proc;
  };
  const handle = { grpcPort: opts.grpcPort, caPort, caFile: join(dir, 'moat-ca.pem') } as TlsMediation;
  handle.proc = await start();
  writeFileSync(handle.caFile, await (await fetch(`http://127.0.0.1:${caPort}/ca.pem`)).text());
  handle.stop = async () => {
    await handle.proc.stop();
  };
  handle.restart = async () => {
    handle.proc = await start();
  };
  handle.remove = async () => {
    await handle.proc.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  return handle;
}

export interface CurlResult {
  code: number | null;
  status: number;
  body: string;
  stderr: string;
}

/** curl through the explicit proxy: `-w` appends the status on its own last line. */
export async function curlViaProxy(proxyPort: number, url: string, args: string[] = []): Promise<CurlResult> {
  const result = await runCommand(
    'curl',
    ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${proxyPort}`, '-w', '\n%{http_code}', ...args, url],
    { timeoutMs: 15_000 },
  );
  const lines = result.stdout.split('\n');
  const status = Number(lines.pop() ?? 0);
  return { code: result.code, status, body: lines.join('\n'), stderr: result.stderr };
}

/**
 * A TLS connection through the proxy's CONNECT, as a client that trusts `ca`: resolves once the
 * handshake is done (rejects on a refused CONNECT or a failed handshake). For raw requests curl
 * will not send (absolute-form with a conflicting Host, silence after the handshake).
 */
export async function tlsViaConnect(
  proxyPort: number,
  authority: string,
  opts: { servername: string; ca: string },
): Promise<TLSSocket> {
  const raw = netConnect({ host: '127.0.0.1', port: proxyPort });
  await new Promise<void>((resolve, reject) => {
    raw.once('error', reject);
    raw.once('connect', () => {
      raw.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
    });
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      raw.off('data', onData);
      if (/^HTTP\/1\.1 200/.test(head)) resolve();
      else reject(new Error(`CONNECT refused: ${head.split('\r\n')[0]}`));
    };
    raw.on('data', onData);
  });
  raw.removeAllListeners('error');
  return new Promise((resolve, reject) => {
    const secure = tlsConnect({ socket: raw, servername: opts.servername, ca: readFileSync(opts.ca) });
    secure.once('secureConnect', () => resolve(secure));
    secure.once('error', reject);
  });
}

/** Sends `request` on `socket` and collects everything until the connection closes (or `timeoutMs`). */
export function exchangeRaw(socket: TLSSocket, request: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(reply);
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString('utf8');
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(reply);
    });
    socket.write(request);
  });
}

export interface ServiceTls {
  /** tls-mediation's side: its server certificate, and the CA clients must chain to. */
  mediation: { caFile: string; certFile: string; keyFile: string };
  /** The proxy's side: the CA tls-mediation must chain to, and its client certificate. */
  proxy: { caFile: string; certFile: string; keyFile: string };
  /** The proxy's environment for it. */
  proxyEnv: Record<string, string>;
  /** A client certificate from another CA (must be refused). */
  stranger: { certFile: string; keyFile: string };
  remove(): void;
}

/** A private CA with a server certificate for tls-mediation on 127.0.0.1 and a client certificate for the proxy. */
export async function serviceTls(): Promise<ServiceTls> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-service-tls-'));
  const ca = await createPrivateCa('Moat test service CA');
  const server = await ca.issue({ commonName: 'tls-mediation', ipAddresses: ['127.0.0.1'], usage: 'server' });
  const client = await ca.issue({ commonName: 'moat-proxy', usage: 'client' });
  const other = await (await createPrivateCa('Some other CA')).issue({
    commonName: 'moat-proxy',
    usage: 'client',
  });
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text, { mode: 0o600 });
    return file;
  };
  const caFile = write('ca.crt', ca.cert);
  const proxy = {
    caFile,
    certFile: write('proxy.crt', client.cert),
    keyFile: write('proxy.key', client.key),
  };
  return {
    mediation: {
      caFile,
      certFile: write('server.crt', server.cert),
      keyFile: write('server.key', server.key),
    },
    proxy,
    proxyEnv: {
      MOAT_PROXY_TLS_MEDIATION_CA_FILE: proxy.caFile,
      MOAT_PROXY_TLS_MEDIATION_CERT_FILE: proxy.certFile,
      MOAT_PROXY_TLS_MEDIATION_KEY_FILE: proxy.keyFile,
    },
    stranger: { certFile: write('other.crt', other.cert), keyFile: write('other.key', other.key) },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
