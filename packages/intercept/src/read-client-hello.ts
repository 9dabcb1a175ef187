import type { Socket } from 'node:net';
import { type ClientHello, MAX_CLIENT_HELLO_LENGTH, parseClientHello } from './client-hello.js';
import { ClientHelloError, type ClientHelloFailure } from './errors.js';

export interface ReadClientHelloOptions {
  /** Give up when the ClientHello is not complete after this long (default 10 s). */
  timeoutMs?: number;
  /** Give up when this many bytes arrived without a complete ClientHello (default 64 KiB + record headers). */
  maxBytes?: number;
}

export interface ClientHelloRead {
  hello: ClientHello;
  /** Every byte read from the socket, the ClientHello and anything after it: replay them upstream. */
  bytes: Buffer;
}

const DEFAULT_TIMEOUT_MS = 10_000;
// A maximal ClientHello split into the smallest number of full records, plus one more header of slack.
const DEFAULT_MAX_BYTES = MAX_CLIENT_HELLO_LENGTH + 4 + 6 * 5;

/**
 * Reads from `socket` until a whole ClientHello is in, however the client split it into
 * records and TCP segments. On success the socket is left PAUSED with its listeners removed,
 * so nothing after `bytes` is lost (resume or pipe it to read on); on failure it is left as it is (close it, or answer on it).
 * Either way the socket is the caller's again, error handling included.
 */
export function readClientHello(
  socket: Socket,
  options: ReadClientHelloOptions = {},
): Promise<ClientHelloRead> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  return new Promise((resolve, reject) => {
    // One growing buffer (doubling) rather than a concat per read: a client dribbling its hello a byte
    // at a time must not cost quadratic copying. Parsing waits until the parser's `needed` is in.
    let buffer: Buffer = Buffer.alloc(0);
    let length = 0;
    let needed = 1;
    const received = () => buffer.subarray(0, length);
    const fail = (reason: ClientHelloFailure, message: string, cause?: unknown) => {
      finish();
      reject(new ClientHelloError(message, reason, received(), cause === undefined ? undefined : { cause }));
    };
    const tooLarge = () =>
      fail('too-large', `${length} bytes without a complete ClientHello (limit ${maxBytes})`);
    const onData = (chunk: Buffer | string) => {
      if (typeof chunk === 'string') {
        fail('socket-error', 'socket has an encoding set; readClientHello needs raw bytes');
        return;
      }
      append(chunk);
      if (length < needed) {
        if (length > maxBytes) tooLarge();
        return;
      }
      const result = parseClientHello(received());
      switch (result.status) {
        case 'complete':
          finish();
          resolve({ hello: result, bytes: received() });
          return;
        case 'incomplete':
          needed = result.needed;
          if (length > maxBytes) tooLarge();
          return;
        case 'not-tls':
          fail('not-tls', `not a TLS ClientHello: ${result.reason}`);
          return;
        case 'malformed':
          fail('malformed', `malformed ClientHello: ${result.reason}`);
          return;
      }
    };
    const append = (chunk: Buffer) => {
      if (length === 0) {
        // The usual case: the whole hello in the first read, used as it is.
        buffer = chunk;
      } else {
        if (length + chunk.length > buffer.length) {
          const grown = Buffer.allocUnsafe(Math.max(buffer.length * 2, length + chunk.length));
          buffer.copy(grown, 0, 0, length);
          buffer = grown;
        }
        chunk.copy(buffer, length);
      }
      length += chunk.length;
    };
    const onEnd = () => fail('closed', 'the client ended the connection before its ClientHello was complete');
    const onClose = () => fail('closed', 'the connection closed before the ClientHello was complete');
    const onError = (error: Error) => fail('socket-error', `socket error: ${error.message}`, error);
    const timer = setTimeout(
      () => fail('timeout', `no complete ClientHello within ${timeoutMs} ms (${length} bytes read)`),
      timeoutMs,
    );
    function finish(): void {
      // Pause BEFORE dropping the data listener: a flowing stream with no listener would discard data.
      socket.pause();
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onClose);
      socket.off('error', onError);
    }

    if (socket.destroyed || socket.readableEnded) {
      fail('closed', 'the socket is already closed');
      return;
    }
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.once('close', onClose);
    socket.once('error', onError);
    socket.resume();
  });
}
