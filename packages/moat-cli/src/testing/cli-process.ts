import { type ChildProcess, spawn } from 'node:child_process';
import { runCommand } from '@moat/testkit';
import { distFile } from '../paths.js';

/** Helpers for tests that drive the real `moat` binary as a child process. */

export const MOAT_BIN = distFile('main.js');
export const MOAT_WITH_FAKE_BIN = distFile('testing/moat-with-fake-service.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliRunOptions {
  bin?: string;
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Run through a wrapper (e.g. setpriv to drop root). */
  prefix?: string[];
}

/** Runs moat to completion; rejects when it had to be killed after `timeoutMs`. */
export async function runMoat(args: readonly string[], options: CliRunOptions = {}): Promise<CliResult> {
  const [command, ...rest] = moatArgv(args, options);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const r = await runCommand(command, rest, { env: moatEnv(options), timeoutMs });
  if (r.signal) throw new Error(`moat did not exit within ${timeoutMs}ms\n${r.stdout}\n${r.stderr}`);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const moatArgv = (args: readonly string[], options: CliRunOptions) =>
  [...(options.prefix ?? []), process.execPath, options.bin ?? MOAT_BIN, ...args] as [string, ...string[]];
const moatEnv = (options: CliRunOptions) => ({ ...process.env, NO_COLOR: '1', ...options.env });

/** A running moat process whose output can be awaited line by line. */
export class MoatProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exit: Promise<number | null>;

  constructor(args: readonly string[], options: CliRunOptions = {}) {
    const [command, ...rest] = moatArgv(args, options);
    this.child = spawn(command, rest, {
      env: moatEnv(options),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exit = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** Resolves once stdout contains a line matching `pattern`; rejects on timeout or exit. */
  async waitForOutput(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exit.then(() => {
      exited = true;
    });
    for (;;) {
      const match = this.stdout.match(pattern);
      if (match) return match;
      if (exited || Date.now() > deadline) {
        throw new Error(
          `no output matching ${pattern} (exited: ${exited})\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  async finished(timeoutMs: number): Promise<CliResult> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`moat did not exit within ${timeoutMs}ms\n${this.stdout}\n${this.stderr}`));
      }, timeoutMs);
    });
    try {
      const code = await Promise.race([this.exit, timeout]);
      return { code, stdout: this.stdout, stderr: this.stderr };
    } finally {
      clearTimeout(timer);
    }
  }
}
