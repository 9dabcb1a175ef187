import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { TLSSocket, type TlsOptions } from 'node:tls';
import { infectedSamples, type Sample } from '@moat/clamav';

/**
 * The lab's "internet server", running in moat-wan. Small on purpose: enough
 * for proxy, AV and QoS tests to fetch a page, a body of known size, and see
 * which request headers reached the origin.
 *
 *   /            a small HTML page
 *   /bytes/<n>   n bytes of 'x' (up to 1 GiB), streamed
 *   /echo        the request (method, url, headers, remote address) as JSON
 *   /random/<n>  n pseudo-random bytes (up to 64 MiB), the same for the same n and ?seed=; the
 *                X-Content-Sha256 header says what a client must receive
 *   /av/<name>   antivirus samples: eicar.com, eicar.zip, eicar-nested.zip, eicar.com.gz,
 *                eicar.tar, eicar.tar.gz, hash-sample.bin, marker.pdf (harmless test files that
 *                the project's test signatures detect)
 *   /healthz     "ok"
 *
 * The same routes are served over HTTPS (port 443 in the lab) with a certificate from
 * the lab CA; there /echo also reports the TLS server name, version and ALPN protocol.
 */

const MAX_BYTES = 1024 ** 3;
const MAX_RANDOM = 64 * 1024 ** 2;

let samples: Promise<Sample[]> | undefined;
const avSamples = () => {
  samples ??= infectedSamples();
  return samples;
};

/** Deterministic bytes that do not compress (clamd and the proxy must really handle n bytes). */
function pseudoRandom(n: number, seed: string): Buffer {
  const out = Buffer.allocUnsafe(n);
  let block = createHash('sha256').update(`moat-lab-random:${seed}`).digest();
  for (let offset = 0; offset < n; offset += block.length) {
    block.copy(out, offset, 0, Math.min(block.length, n - offset));
    block = createHash('sha256').update(block).digest();
  }
  return out;
}
const CHUNK = Buffer.alloc(64 * 1024, 'x');

const INDEX_HTML = `<!doctype html>
<html><head><title>Moat lab origin</title></head>
<body><h1>Moat lab origin</h1><p>You reached the test origin server in moat-wan.</p></body></html>
`;

export function createOriginServer(): Server {
  return createServer(handleOrigin);
}

/**
 * The same routes over HTTPS (HTTP/1.1, announced through ALPN), with the lab certificate; `tls`
 * overrides protocol settings (the bad-TLS servers' old versions and weak suites).
 */
export function createOriginTlsServer(
  credentials: { cert: Buffer | string; key: Buffer | string },
  tls: TlsOptions = {},
): HttpsServer {
  return createHttpsServer({ ...credentials, ALPNProtocols: ['http/1.1'], ...tls }, handleOrigin);
}

function handleOrigin(req: IncomingMessage, res: ServerResponse) {
  const path = new URL(req.url ?? '/', 'http://origin').pathname;
  if (path === '/') return send(res, 200, 'text/html; charset=utf-8', INDEX_HTML);
  if (path === '/healthz') return send(res, 200, 'text/plain', 'ok\n');
  if (path === '/echo')
    return send(res, 200, 'application/json', `${JSON.stringify(describe(req), null, 2)}\n`);
  const random = /^\/random\/(\d+)$/.exec(path);
  if (random?.[1] !== undefined) {
    const n = Number(random[1]);
    if (n > MAX_RANDOM) return send(res, 400, 'text/plain', `at most ${MAX_RANDOM} bytes\n`);
    const seed = new URL(req.url ?? '/', 'http://origin').searchParams.get('seed') ?? '';
    const body = pseudoRandom(n, seed);
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': n,
      'x-content-sha256': createHash('sha256').update(body).digest('hex'),
    });
    return res.end(body);
  }
  const sample = /^\/av\/([A-Za-z0-9.-]+)$/.exec(path);
  if (sample?.[1] !== undefined) {
    const name = sample[1];
    void avSamples().then((all) => {
      const found = all.find((s) => s.name === name);
      if (!found)
        return send(res, 404, 'text/plain', `no sample ${name}; try ${all.map((s) => s.name).join(', ')}\n`);
      res.writeHead(200, {
        'content-type': found.contentType,
        'content-length': found.content.length,
        'content-disposition': `attachment; filename="${found.name}"`,
      });
      res.end(found.content);
    });
    return;
  }
  const bytes = /^\/bytes\/(\d+)$/.exec(path);
  if (bytes?.[1] !== undefined) {
    const n = Number(bytes[1]);
    if (n > MAX_BYTES) return send(res, 400, 'text/plain', `at most ${MAX_BYTES} bytes\n`);
    return streamBytes(res, n);
  }
  return send(res, 404, 'text/plain', 'not found\n');
}

function describe(req: IncomingMessage) {
  const socket = req.socket;
  return {
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    remoteAddress: socket.remoteAddress,
    headers: req.headers,
    // Over HTTPS: what the client's TLS said, so proxy tests can see what reached the origin.
    ...(socket instanceof TLSSocket
      ? {
          tls: {
            servername: (socket as TLSSocket & { servername?: string | false }).servername || null,
            protocol: socket.getProtocol(),
            alpnProtocol: socket.alpnProtocol || null,
          },
        }
      : {}),
  };
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** Streams with back-pressure so a 1 GiB body never sits in memory. */
function streamBytes(res: ServerResponse, n: number): void {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
  let left = n;
  const pump = () => {
    while (left > 0) {
      const size = Math.min(left, CHUNK.length);
      left -= size;
      if (!res.write(size === CHUNK.length ? CHUNK : CHUNK.subarray(0, size))) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
