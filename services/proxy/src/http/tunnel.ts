/**
 * Byte splicing between a client and an upstream (CONNECT tunnels and intercepted TLS that is not
 * decrypted): connect with a deadline, relay both ways with back-pressure, count bytes, close both
 * sides together, and give up on a tunnel idle for too long.
 */
import { connect, type Socket } from 'node:net';
import { describeUpstreamError, type UpstreamError } from '../upstream/upstream.js';
import { formatAuthority } from './target.js';

export interface TunnelResult {
  bytesUp: number;
  bytesDown: number;
  /** Why it ended, when not by a normal close. */
  error?: string;
}

/** Opens the upstream TCP connection, or explains why it could not be opened. */
export function connectUpstream(ip: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: ip, port, noDelay: true });
    const where = formatAuthority(ip, port);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        describeUpstreamError(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' }), where, {
          connectMs: timeoutMs,
          idleMs: 0,
        }),
      );
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(describeUpstreamError(err, where, { connectMs: timeoutMs, idleMs: 0 }) satisfies UpstreamError);
    });
  });
}

/** Relays until either side closes; resolves with the byte counts. Never rejects. */
export function splice(
  client: Socket,
  upstream: Socket,
  head: Buffer,
  idleTimeoutMs: number,
): Promise<TunnelResult> {
  return new Promise((resolve) => {
    const result: TunnelResult = { bytesUp: head.length, bytesDown: 0 };
    let ended = false;
    const end = (error?: string) => {
      if (ended) return;
      ended = true;
      if (error) result.error = error;
      client.destroy();
      upstream.destroy();
      resolve(result);
    };
    client.on('data', (chunk: Buffer) => {
      result.bytesUp += chunk.length;
    });
    upstream.on('data', (chunk: Buffer) => {
      result.bytesDown += chunk.length;
    });
    for (const [socket, side] of [
      [client, 'client'],
      [upstream, 'server'],
    ] as const) {
      socket.setTimeout(idleTimeoutMs, () => end(`tunnel idle for ${Math.round(idleTimeoutMs / 1000)} s`));
      socket.once('error', (err) => end(`${side}: ${err.message}`));
      socket.once('close', () => end());
    }
    if (head.length) upstream.write(head);
    // half-close is passed on (a client may send FIN and still read the answer)
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  });
}
