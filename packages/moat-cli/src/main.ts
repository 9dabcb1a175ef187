#!/usr/bin/env node
import { createProgram } from './program.js';
import { runCli } from './run-cli.js';

/** The `moat` binary. */
await runCli(createProgram());
