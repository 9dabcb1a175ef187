import { connect } from 'node:net';
import { freePort } from './ports.js';
import { startProcess, waitFor } from './process.js';

export interface RedisServer {
  url: string;
  port: number;
  stop(): Promise<void>;
}

const pong = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => s.write('PING\r\n'));
    s.once('data', (b) => {
      s.destroy();
      resolve(b.toString().startsWith('+PONG'));
    });
    s.once('error', () => resolve(false));
  });

/** Starts Debian's redis-server, without persistence, on a free loopback port. */
export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const proc = startProcess('redis-server', 'redis-server', [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  await waitFor(`redis-server on port ${port}`, () => pong(port), { proc });
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => proc.stop() };
}
