#!/usr/bin/env node
import { CommanderError } from 'commander';
import { CliError } from './client.js';
import { buildProgram } from './program.js';

const program = buildProgram({ out: (s) => console.log(s), err: (s) => console.error(s) });
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CliError) {
    if (err.message) console.error(`moatctl: ${err.message}`);
    process.exitCode = err.exitCode;
  } else if (err instanceof CommanderError) {
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    console.error(`moatctl: unexpected error: ${(err as Error).stack ?? String(err)}`);
    process.exitCode = 70;
  }
}
