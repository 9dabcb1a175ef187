/** Runs the nft command line tool: a script on stdin (one transaction), or a query with JSON output. */
import { runTool, ToolError } from '@moat/service-kit';

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

async function run(args: readonly string[], stdin: string | undefined, options: NftOptions): Promise<string> {
  try {
    return await runTool(options.command ?? ['nft'], args, {
      ...(stdin === undefined ? {} : { stdin }),
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      hint: 'is nftables installed?',
    });
  } catch (err) {
    throw err instanceof ToolError ? new NftError(err.message, err.exitCode) : err;
  }
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
