/**
 * A clamd client for the commands a scanning service needs: INSTREAM (content streamed in chunks,
 * with back-pressure and a deadline), PING, VERSION, RELOAD and STATS. Every command uses its own
 * connection ("z" form: NUL-terminated), so one stuck scan never blocks another and a clamd restart
 * costs nothing but the scans in flight.
 *
 * Replies are parsed strictly: anything clamd does not document is an error, never "clean".
 */
import { connect, type Socket } from 'node:net';
import type { ClamdAddress } from './address.js';
import { formatClamdAddress } from './address.js';

export type ScanOutcome = { status: 'clean' } | { status: 'infected'; signature: string };

export type ClamdErrorKind =
  /** No connection (clamd down, restarting, wrong address). */
  | 'unreachable'
  /** No reply within the deadline. */
  | 'timeout'
  /** The content is larger than clamd's StreamMaxLength. */
  | 'size-limit'
  /** clamd answered something this client does not understand, or closed early. */
  | 'protocol'
  /** clamd reported an error of its own (out of memory, a broken archive with AlertBroken…). */
  | 'clamd';

export class ClamdError extends Error {
  override name = 'ClamdError';
  constructor(
    readonly kind: ClamdErrorKind,
    message: string,
  ) {
    super(message);
  }
}

export interface ClamdClientOptions {
  /** Deadline for a whole command, connection included (default 30 s). */
  timeoutMs?: number;
  /** Largest INSTREAM chunk sent (default 64 KiB). */
  chunkSize?: number;
}

const DEFAULT_CHUNK = 64 * 1024;
const REPLY_LIMIT = 64 * 1024;

export class ClamdClient {
  private readonly timeoutMs: number;
  private readonly chunkSize: number;

  constructor(
    readonly address: ClamdAddress,
    opts: ClamdClientOptions = {},
  ) {
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
  }

  /** Resolves when clamd answers PONG. */
  async ping(timeoutMs = 2_000): Promise<void> {
    const reply = await this.command('PING', timeoutMs);
    if (reply !== 'PONG') throw new ClamdError('protocol', `clamd answered PING with "${reply}"`);
  }

  /** "ClamAV 1.4.6/27412/Thu Dec  3 09:23:47 2026" (engine/daily version/date), or just "ClamAV 1.4.6" without a CVD. */
  version(timeoutMs = 2_000): Promise<string> {
    return this.command('VERSION', timeoutMs);
  }

  /** Asks clamd to reload its signature database (it keeps scanning with the old one meanwhile). */
  async reload(timeoutMs = 2_000): Promise<void> {
    const reply = await this.command('RELOAD', timeoutMs);
    if (reply !== 'RELOADING') throw new ClamdError('protocol', `clamd answered RELOAD with "${reply}"`);
  }

  /** clamd's STATS text (pools, threads, queue, memory). */
  stats(timeoutMs = 2_000): Promise<string> {
    return this.command('STATS', timeoutMs);
  }

  /**
   * Streams `content` to clamd and returns its verdict. `content` may be a Buffer, or chunks as they
   * arrive (a JetStream object, a file stream); a slow clamd pauses the source (back-pressure).
   */
  async scan(
    content: Uint8Array | AsyncIterable<Uint8Array>,
    opts: { timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<ScanOutcome> {
    const session = await Session.open(this.address, opts.timeoutMs ?? this.timeoutMs, opts.signal);
    try {
      await session.write(Buffer.from('zINSTREAM\0'));
      const source = content instanceof Uint8Array ? [content] : content;
      // a source that stalls (an object whose chunks never come) must not outlive the deadline
      for await (const piece of session.bounded(source)) {
        for (let offset = 0; offset < piece.length; offset += this.chunkSize) {
          // clamd answers early (and closes) when the stream passes StreamMaxLength: stop sending
          if (session.replied) break;
          const chunk = piece.subarray(offset, offset + this.chunkSize);
          const header = Buffer.allocUnsafe(4);
          header.writeUInt32BE(chunk.length, 0);
          await session.write(header, chunk);
        }
        if (session.replied) break;
      }
      if (!session.replied) await session.write(Buffer.alloc(4));
      return parseScanReply(await session.reply());
    } finally {
      session.close();
    }
  }

  private async command(name: string, timeoutMs: number): Promise<string> {
    const session = await Session.open(this.address, timeoutMs);
    try {
      await session.write(Buffer.from(`z${name}\0`));
      return await session.reply();
    } finally {
      session.close();
    }
  }
}

/** Parses an INSTREAM reply: "stream: OK", "stream: <name> FOUND", or "<reason> ERROR". */
export function parseScanReply(reply: string): ScanOutcome {
  if (reply === 'stream: OK') return { status: 'clean' };
  const found = /^stream: (.+) FOUND$/.exec(reply);
  if (found?.[1]) return { status: 'infected', signature: found[1] };
  if (/size limit exceeded/i.test(reply))
    throw new ClamdError('size-limit', `clamd refused the content: ${reply} (raise StreamMaxLength)`);
  const error = /^(?:stream: )?(.*) ERROR$/.exec(reply);
  if (error) throw new ClamdError('clamd', `clamd could not scan the content: ${error[1]}`);
  throw new ClamdError('protocol', `unexpected reply from clamd: "${reply.slice(0, 200)}"`);
}

/** One connection, one command: writes with back-pressure, the NUL-terminated reply, one deadline. */
class Session {
  replied = false;
  private received: Buffer[] = [];
  private receivedBytes = 0;
  private failure?: ClamdError;
  private wake?: () => void;
  private readonly timer: NodeJS.Timeout;
  /** Rejects with the session's failure (for racing reads of the content against it). */
  readonly failed: Promise<never>;
  private rejectFailed!: (err: ClamdError) => void;

  private constructor(
    private readonly socket: Socket,
    where: string,
    timeoutMs: number,
    private readonly signal?: AbortSignal,
  ) {
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => undefined);
    this.timer = setTimeout(
      () => this.fail(new ClamdError('timeout', `clamd at ${where} did not answer within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (data: Buffer) => {
      this.received.push(data);
      this.receivedBytes += data.length;
      if (data.includes(0) || this.receivedBytes > REPLY_LIMIT) this.replied = true;
      this.notify();
    });
    socket.on('end', () => {
      this.replied = true;
      this.notify();
    });
    socket.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code ?? '';
      // clamd closes the connection the moment it answers early (size limit): that is not a failure
      if (this.receivedBytes > 0 && (code === 'EPIPE' || code === 'ECONNRESET')) {
        this.replied = true;
        this.notify();
        return;
      }
      const kind = ['ECONNREFUSED', 'ENOENT', 'EACCES', 'EHOSTUNREACH'].includes(code)
        ? 'unreachable'
        : 'protocol';
      this.fail(new ClamdError(kind, `clamd at ${where}: ${err.message}`));
    });
    socket.on('connect', () => this.notify());
    socket.on('drain', () => this.notify());
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  private readonly onAbort = () => this.fail(new ClamdError('timeout', 'the scan was cancelled'));

  static async open(address: ClamdAddress, timeoutMs: number, signal?: AbortSignal): Promise<Session> {
    const where = formatClamdAddress(address);
    if (signal?.aborted) throw new ClamdError('timeout', 'the scan was cancelled');
    const socket = 'path' in address ? connect(address.path) : connect(address.port, address.host);
    const session = new Session(socket, where, timeoutMs, signal);
    try {
      await session.until(() => !socket.connecting);
    } catch (err) {
      session.close();
      throw err;
    }
    return session;
  }

  /** Writes the buffers; resolves once the socket can take more (back-pressure). */
  async write(...buffers: Uint8Array[]): Promise<void> {
    let full = false;
    for (const buffer of buffers) {
      if (this.failure) throw this.failure;
      full = !this.socket.write(buffer) || full;
    }
    if (full) await this.until(() => this.socket.writableLength === 0 || this.replied);
  }

  /** The source's chunks, each read abandoned when the session fails (deadline, clamd gone). */
  async *bounded(source: Iterable<Uint8Array> | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
    if (Symbol.iterator in source) {
      yield* source;
      return;
    }
    const iterator = source[Symbol.asyncIterator]();
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), this.failed]);
        if (next.done) return;
        yield next.value;
      }
    } finally {
      void iterator.return?.();
    }
  }

  /** The reply text, without the terminating NUL. */
  async reply(): Promise<string> {
    await this.until(() => this.replied);
    const text = Buffer.concat(this.received).toString('utf8');
    const end = text.indexOf('\0');
    if (end < 0) {
      if (this.receivedBytes > REPLY_LIMIT) throw new ClamdError('protocol', 'clamd sent an oversized reply');
      throw new ClamdError(
        'protocol',
        text
          ? `clamd closed the connection mid-reply ("${text.slice(0, 100)}")`
          : 'clamd closed the connection without answering',
      );
    }
    return text.slice(0, end);
  }

  close(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.socket.destroy();
  }

  private fail(err: ClamdError): void {
    if (!this.failure) this.rejectFailed(err);
    this.failure ??= err;
    this.socket.destroy();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  private async until(ready: () => boolean): Promise<void> {
    while (!this.failure && !ready()) {
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
    if (this.failure) throw this.failure;
  }
}
