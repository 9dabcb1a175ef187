import { Command } from 'commander';
import { registerDevCommand } from './dev/commands.js';
import { registerLabCommands } from './lab/commands.js';
import { isRootUser } from './preflight.js';
import { consoleReporter, type Reporter } from './report.js';
import { SERVICES, type ServiceDefinition } from './services.js';

/** Everything the commands touch outside themselves, injectable for tests. */
export interface ProgramDeps {
  isRoot: () => boolean;
  reporter: Reporter;
  /** The service registry (tests pass a smaller one). */
  registry: readonly ServiceDefinition[];
  stdout: NodeJS.WriteStream;
  setExitCode: (code: number) => void;
  /** Where commander writes help and usage errors. */
  writeOut: (text: string) => void;
  writeErr: (text: string) => void;
}

export function defaultDeps(): ProgramDeps {
  return {
    isRoot: isRootUser,
    reporter: consoleReporter(),
    registry: SERVICES,
    stdout: process.stdout,
    setExitCode: (code) => {
      process.exitCode = code;
    },
    writeOut: (text) => process.stdout.write(text),
    writeErr: (text) => process.stderr.write(text),
  };
}

export function createProgram(overrides: Partial<ProgramDeps> = {}): Command {
  const deps = { ...defaultDeps(), ...overrides };
  const program = new Command('moat')
    .description('Run Moat locally: `moat dev` on this host, or `moat lab` in network namespaces')
    .version('0.1.0')
    .enablePositionalOptions()
    .showHelpAfterError('(add --help for usage)')
    // Throw instead of process.exit (main.ts maps errors to exit codes); set before
    // adding subcommands, which copy these settings when created.
    .exitOverride()
    .configureOutput({ writeOut: deps.writeOut, writeErr: deps.writeErr });
  registerLabCommands(program, deps);
  registerDevCommand(program, deps);
  return program;
}
