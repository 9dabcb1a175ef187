import { type Command, Option } from 'commander';
import { parsePort, parseSeconds } from '../options.js';
import type { ProgramDeps } from '../program.js';
import { selectDevServices } from '../services.js';
import { defaultDevDir, runDev } from './dev.js';

/** `moat dev` — wiring from flags to dev.ts. */

export function registerDevCommand(program: Command, deps: ProgramDeps): void {
  program
    .command('dev')
    .description('run NATS, Redis and every Moat service on this host (loopback, no root) until Ctrl-C')
    .addOption(
      new Option(
        '--base-port <port>',
        'allocate every port from here (nats, nats monitor, redis, then http+grpc per service) instead of 4222/8222/6379/…',
      )
        .env('MOAT_DEV_BASE_PORT')
        .argParser(parsePort),
    )
    .option(
      '--services <names>',
      'comma-separated services to start (default: every service that does not change the kernel)',
    )
    .option('--no-services', 'start only NATS and Redis')
    .addOption(
      new Option('--dir <path>', 'working directory for NATS/Redis data (wiped at start)')
        .env('MOAT_DEV_DIR')
        .default(defaultDevDir(), '.moat/dev in the repository'),
    )
    .addOption(new Option('--log-level <level>', 'MOAT_LOG_LEVEL for the services').default('info'))
    .addOption(
      new Option('--ready-timeout <seconds>', 'how long each process may take to become ready')
        .argParser(parseSeconds)
        .default(30),
    )
    .addOption(
      new Option('--stop-timeout <seconds>', 'grace period after SIGTERM before SIGKILL, per process')
        .argParser(parseSeconds)
        .default(10),
    )
    .action(
      async (opts: {
        basePort?: number;
        services?: string | boolean;
        dir: string;
        logLevel: string;
        readyTimeout: number;
        stopTimeout: number;
      }) => {
        const services = selectDevServices(opts.services, deps.registry);
        const code = await runDev({
          services,
          registry: deps.registry,
          ...(opts.basePort === undefined ? {} : { basePort: opts.basePort }),
          dir: opts.dir,
          logLevel: opts.logLevel,
          readyTimeoutMs: opts.readyTimeout * 1000,
          stopTimeoutMs: opts.stopTimeout * 1000,
          out: deps.stdout,
        });
        deps.setExitCode(code);
      },
    );
}
