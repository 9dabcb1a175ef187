import { spawn } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { type ConnectionOptions, connect } from 'node:tls';

/**
 * Records the first flight a real TLS client sends: a plain TCP server that never answers
 * takes every byte until the client has been quiet for a moment. It relies on no parser.
 */

const QUIET_MS = 250;

export async function recordFirstFlight(
  startClient: (port: number) => { stop: () => void },
  host = '127.0.0.1',
): Promise<Buffer> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, resolve);
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no server address');
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const client = startClient(address.port);
  try {
    const socket = await accepted;
    const chunks: Buffer[] = [];
    await new Promise<void>((resolve) => {
      let quiet = setTimeout(resolve, QUIET_MS * 8);
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        clearTimeout(quiet);
        quiet = setTimeout(resolve, QUIET_MS);
      });
      socket.on('error', () => {});
      socket.on('close', () => resolve());
    });
    socket.destroy();
    return Buffer.concat(chunks);
  } finally {
    client.stop();
    server.close();
  }
}

/** The ClientHello of Node's own TLS client. */
export function nodeClientHello(
  options: Omit<ConnectionOptions, 'port'>,
  host = '127.0.0.1',
): Promise<Buffer> {
  return recordFirstFlight((port) => {
    const socket = connect({ ...options, host, port, rejectUnauthorized: false });
    socket.on('error', () => {});
    return { stop: () => socket.destroy() };
  }, host);
}

/**
 * The ClientHello of the curl CLI. `url` is given with a `PORT` placeholder; `host`
 * is where our recorder listens (names resolve there through --resolve).
 */
export function curlClientHello(url: string, extraArgs: string[] = [], host = '127.0.0.1'): Promise<Buffer> {
  return recordFirstFlight((port) => {
    const target = url.replace('PORT', String(port));
    const name = new URL(target).hostname;
    const resolve = /^[\d.[\]:]+$/.test(name) ? [] : ['--resolve', `${name}:${port}:${host}`];
    const child = spawn('curl', ['-sk', '--max-time', '5', ...resolve, ...extraArgs, target], {
      stdio: 'ignore',
    });
    child.on('error', () => {});
    return { stop: () => child.kill('SIGKILL') };
  }, host);
}
