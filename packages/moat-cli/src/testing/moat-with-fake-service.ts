import { createProgram } from '../program.js';
import { runCli } from '../run-cli.js';
import { SERVICES } from '../services.js';
import { FAKE_SERVICE } from './fake-registry.js';

/**
 * The `moat` binary with the fake service appended to the registry — how the
 * tests inject a service list into a real CLI process.
 */
await runCli(createProgram({ registry: [...SERVICES, FAKE_SERVICE] }));
