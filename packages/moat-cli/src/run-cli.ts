import { type Command, CommanderError } from 'commander';
import { CliError } from './errors.js';

/** Parses and runs `program`, turning failures into a message, a next step and process.exitCode. */
export async function runCli(program: Command, argv: readonly string[] = process.argv): Promise<void> {
  try {
    await program.parseAsync(argv);
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help/version text).
      process.exitCode = error.exitCode;
    } else if (error instanceof CliError) {
      console.error(`moat: ${error.message}`);
      if (error.hint) console.error(`  → ${error.hint}`);
      process.exitCode = error.exitCode;
    } else {
      console.error('moat: unexpected error:', error);
      process.exitCode = 1;
    }
  }
}
