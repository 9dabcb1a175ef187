import { request } from 'node:http';
import { connect } from 'node:net';
import { sleep } from './run.js';

/** How to tell that a started process is ready to serve. */
export type ReadyCheck =
  | { kind: 'http'; url: string }
  | { kind: 'redis'; host: string; port: number }
  | { kind: 'tcp'; host: string; port: number };

const PROBE_TIMEOUT_MS = 2_000;

export function describeCheck(check: ReadyCheck): string {
  switch (check.kind) {
    case 'http':
      return `GET ${check.url}`;
    case 'redis':
      return `redis PING ${check.host}:${check.port}`;
    case 'tcp':
      return `TCP connect ${check.host}:${check.port}`;
  }
}

/** One attempt: resolves true when the target answers as a ready server would. Never throws. */
export function probeOnce(check: ReadyCheck): Promise<boolean> {
  switch (check.kind) {
    case 'http':
      return httpOk(check.url);
    case 'redis':
      return redisPong(check.host, check.port);
    case 'tcp':
      return tcpAccepts(check.host, check.port);
  }
}

function httpOk(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', timeout: PROBE_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(false));
    req.end();
  });
}

/** Speaks just enough RESP: inline PING, expect +PONG (redis answers -LOADING while it is not ready). */
function redisPong(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
    let reply = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('latin1');
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
    socket.on('timeout', () => done(false));
    socket.on('error', () => done(false));
    socket.on('close', () => done(false));
  });
}

function tcpAccepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: PROBE_TIMEOUT_MS });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.on('connect', () => done(true));
    socket.on('timeout', () => done(false));
    socket.on('error', () => done(false));
  });
}

/**
 * Polls `attempt` until it returns true. Stops early (returning false) when
 * `giveUp` says the target can no longer become ready (e.g. its process exited),
 * when the deadline passes, or when `signal` is aborted.
 */
export async function waitUntil(
  attempt: () => Promise<boolean>,
  options: { timeoutMs: number; intervalMs?: number; giveUp?: () => boolean; signal?: AbortSignal },
): Promise<boolean> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (options.signal?.aborted || options.giveUp?.()) return false;
    if (await attempt()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(options.intervalMs ?? 200);
  }
}
