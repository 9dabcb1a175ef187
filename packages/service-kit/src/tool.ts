/**
 * Runs a system tool (nft, tc, ip, conntrack) the way the kernel-facing services need it: arguments
 * never go through a shell, stdin can carry a script, a hung tool is killed, and a failure carries the
 * tool's own message, which services pass on to operators unchanged.
 */
import { spawn } from 'node:child_process';

export interface ToolOptions {
  /** Text written to the tool's stdin (a script for `nft -f -` or `tc -batch -`). */
  stdin?: string;
  timeoutMs?: number;
}

/** A tool that failed: `message` is its stderr (or why it could not run); exitCode null if it never ran. */
export class ToolError extends Error {
  override name = 'ToolError';
  constructor(
    message: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

/**
 * Runs `command` (the program and its leading arguments, e.g. `['ip', 'netns', 'exec', 'gw', 'tc']`)
 * with `args`; resolves with stdout, rejects with ToolError. `hint` follows "cannot run X:" when the
 * program is missing (e.g. "is nftables installed?").
 */
export function runTool(
  command: readonly string[],
  args: readonly string[],
  options: ToolOptions & { hint?: string } = {},
): Promise<string> {
  const [program, ...lead] = command;
  if (program === undefined) return Promise.reject(new ToolError('no command given', null));
  return new Promise((resolve, reject) => {
    const child = spawn(program, [...lead, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      const hint = options.hint ? ` (${options.hint})` : '';
      reject(new ToolError(`cannot run ${program}: ${error.message}${hint}`, null));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(Buffer.concat(out).toString());
      const stderr = Buffer.concat(err).toString().trim();
      reject(
        new ToolError(signal ? `killed by ${signal} (timed out?)` : stderr || `exit code ${code}`, code),
      );
    });
    // a refused or dead child closes stdin early; the close handler reports why
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
}
