import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import type { ReadyCheck } from '../probes.js';
import { signalGroup } from '../proc.js';
import { formatLogLine, type Paint, prefixLine } from './log-lines.js';

/** One foreground child of `moat dev`. */
export interface DevProcessSpec {
  name: string;
  command: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  ready: ReadyCheck;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

export interface OutputOptions {
  write: (text: string) => void;
  paint: Paint;
  labelWidth: number;
  colour: Parameters<Paint>[0];
}

/**
 * A child in its own process group (detached), so the terminal's Ctrl-C reaches
 * only `moat dev`, which then stops children in order. Its output is relayed line
 * by line with a `[name]` prefix.
 */
export class DevChild {
  readonly pid: number | undefined;
  readonly exited: Promise<ExitInfo>;
  /** True once we asked it to stop: its exit is then expected, not a failure. */
  stopRequested = false;
  private exitInfo: ExitInfo | undefined;

  constructor(
    readonly spec: DevProcessSpec,
    output: OutputOptions,
  ) {
    const child = spawn(spec.command, spec.args, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.pid = child.pid;
    this.exited = new Promise((resolve) => {
      const settle = (info: ExitInfo) => {
        this.exitInfo = info;
        resolve(info);
      };
      child.once('exit', (code, signal) => settle({ code, signal }));
      child.once('error', (error) => settle({ code: null, signal: null, error }));
    });
    const prefix = prefixLine(spec.name, output.labelWidth, output.colour, output.paint);
    const relay = (stream: Readable) => {
      createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY }).on('line', (line) =>
        output.write(`${prefix} ${formatLogLine(line, output.paint)}\n`),
      );
    };
    relay(child.stdout);
    relay(child.stderr);
  }

  get hasExited(): boolean {
    return this.exitInfo !== undefined;
  }

  /** SIGTERM the group, wait up to `timeoutMs`, then SIGKILL. Resolves with how it ended. */
  async stop(timeoutMs: number): Promise<'terminated' | 'killed' | 'already-exited'> {
    this.stopRequested = true;
    if (this.pid === undefined || this.hasExited) return 'already-exited';
    signalGroup(this.pid, 'SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const outcome = await Promise.race([this.exited.then(() => 'exited' as const), timedOut]);
    clearTimeout(timer);
    if (outcome === 'exited') {
      signalGroup(this.pid, 'SIGKILL'); // anything it forked and left behind
      return 'terminated';
    }
    signalGroup(this.pid, 'SIGKILL');
    await this.exited;
    return 'killed';
  }

  /** Last-resort, synchronous: used from process 'exit' if moat dev itself is going down hard. */
  killNow(): void {
    if (this.pid !== undefined && !this.hasExited) signalGroup(this.pid, 'SIGKILL');
  }
}

export function describeExit(info: ExitInfo): string {
  if (info.error) return `failed to start: ${info.error.message}`;
  if (info.signal) return `killed by ${info.signal}`;
  return `exited with code ${info.code}`;
}
