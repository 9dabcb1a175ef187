/** Runs the nft command line tool: a script on stdin (one transaction), or a query with JSON output. */
import { spawn } from 'node:child_process';

export interface NftOptions {
  /**
   * The command and its leading arguments; default `nft`. In the lab and in tests:
   * `['ip', 'netns', 'exec', '<namespace>', 'nft']`.
   */
  command?: readonly string[];
  timeoutMs?: number;
}

/** nft refused a script or a query; `message` is nft's own error text (line numbers and carets). */
export class NftError extends Error {
  override name = 'NftError';
  constructor(
    message: string,
    readonly exitCode: number | null,
  ) {
    super(message);
  }
}

function run(args: readonly string[], stdin: string | undefined, options: NftOptions): Promise<string> {
  const [cmd = 'nft', ...lead] = options.command ?? ['nft'];
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...lead, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new NftError(`cannot run ${cmd}: ${error.message} (is nftables installed?)`, null));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) return resolve(Buffer.concat(out).toString());
      const stderr = Buffer.concat(err).toString().trim();
      const why = signal ? `killed by ${signal} (timed out?)` : stderr || `exit code ${code}`;
      reject(new NftError(why, code));
    });
    // a refused or dead child closes stdin early; the close handler reports why
    child.stdin.on('error', () => undefined);
    child.stdin.end(stdin ?? '');
  });
}

/** Applies a script as one transaction (`nft -f -`): all of it, or nothing. */
export async function applyScript(script: string, options: NftOptions = {}): Promise<void> {
  await run(['-f', '-'], script, options);
}

/** Checks a script against the kernel without applying anything (`nft -c -f -`). */
export async function checkScript(script: string, options: NftOptions = {}): Promise<void> {
  await run(['-c', '-f', '-'], script, options);
}

/** `nft -j <args>` parsed (e.g. `list table inet moat`). */
export async function queryJson(args: readonly string[], options: NftOptions = {}): Promise<unknown> {
  return JSON.parse(await run(['-j', ...args], undefined, options));
}

/** The whole ruleset as text (`nft list ruleset`), to compare what lies outside Moat's table. */
export function listRuleset(options: NftOptions = {}): Promise<string> {
  return run(['list', 'ruleset'], undefined, options);
}
