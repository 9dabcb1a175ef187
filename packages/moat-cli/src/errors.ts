/**
 * A user-facing failure: `message` says what went wrong, `hint` says what to do next,
 * `exitCode` is what `moat` exits with (2 = cannot run here, 1 = it ran and failed).
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly hint: string | undefined;
  readonly exitCode: number;

  constructor(message: string, options: { hint?: string; exitCode?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.hint = options.hint;
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A shelled-out command exited non-zero; keeps its stderr so the caller can show it. */
export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(
    readonly command: string,
    readonly args: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
  ) {
    super(
      `${[command, ...args].join(' ')} failed (exit ${exitCode ?? 'signal'}): ${stderr.trim() || 'no output'}`,
    );
  }
}
