import { type Command, Option } from 'commander';
import { CliError } from '../errors.js';
import { parseSeconds } from '../options.js';
import { repoRoot } from '../paths.js';
import { requireExecutables, requireRoot } from '../preflight.js';
import type { ProgramDeps } from '../program.js';
import { assertServicesBuilt, selectServices } from '../services.js';
import { labDown, labExec, labStatus, labUp } from './lab.js';
import { namespaceExists } from './netns.js';
import { renderLabStatus } from './render.js';
import { LAB_CA_CERT, LAB_STATE_DIR } from './state.js';
import { LAB_ADDRESSES, LAB_HOSTNAMES, LAB_NAMESPACES, resolveNamespace } from './topology.js';

/** `moat lab …` — wiring from flags to lab.ts. */

export function registerLabCommands(program: Command, deps: ProgramDeps): void {
  const lab = program
    .command('lab')
    .description(
      'the embedded test bed: moat-lan, moat-gw, moat-wan, moat-remote network namespaces (needs root)',
    )
    .enablePositionalOptions();

  lab
    .command('up')
    .description(
      'create (or repair) the namespaces and start NATS, Redis, the origin servers and the Moat services',
    )
    .option('--services <names>', 'comma-separated services to start (default: every registered service)')
    .option('--no-services', 'start only NATS, Redis and the origin servers')
    .addOption(
      new Option('--ready-timeout <seconds>', 'how long each process may take to become ready')
        .argParser(parseSeconds)
        .default(30),
    )
    .action(async (opts: { services?: string | boolean; readyTimeout: number }) => {
      requireRoot(deps.isRoot);
      const services = selectServices(opts.services, deps.registry);
      requireExecutables([
        'ip',
        'sysctl',
        'curl',
        'openssl',
        'nats-server',
        'redis-server',
        ...services.flatMap((s) => s.requires ?? []),
      ]);
      assertServicesBuilt(services, repoRoot());
      await labUp({ services, readyTimeoutMs: opts.readyTimeout * 1000, reporter: deps.reporter });
      const a = LAB_ADDRESSES;
      deps.reporter.ok('lab is up');
      deps.reporter.info(
        `lan client ${a.lanClient} → gw ${a.gwLan} | ${a.gwWan} → wan ${a.wanGw} ← remote ${a.remoteClient}`,
      );
      deps.reporter.info(
        `origin http://${a.origin}/ (also http://${a.wanGw}/), NATS/Redis in moat-gw on 4222/6379`,
      );
      deps.reporter.info(
        `HTTPS: https://${LAB_HOSTNAMES[0]}/ and the other lab names (${LAB_HOSTNAMES.length}), trust ${LAB_CA_CERT}`,
      );
      if (services.some((s) => s.name === 'control')) {
        deps.reporter.info(`moatctl on this host talks to control through ${LAB_STATE_DIR}/control.sock`);
      }
      deps.reporter.info(
        `try: moat lab exec lan -- curl http://${a.origin}/echo  |  moat lab status  |  moat lab down`,
      );
    });

  lab
    .command('down')
    .description(
      'stop everything the lab started, delete its namespaces and /run/moat-lab (safe when nothing is up)',
    )
    .addOption(
      new Option('--stop-timeout <seconds>', 'grace period after SIGTERM before SIGKILL, per process')
        .argParser(parseSeconds)
        .default(10),
    )
    .action(async (opts: { stopTimeout: number }) => {
      requireRoot(deps.isRoot);
      requireExecutables(['ip']);
      await labDown({ stopTimeoutMs: opts.stopTimeout * 1000, reporter: deps.reporter });
    });

  lab
    .command('status')
    .description('namespaces, addresses and processes of the lab (exit 0 = up, 1 = partly up, 3 = down)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      requireRoot(deps.isRoot);
      requireExecutables(['ip']);
      const status = await labStatus();
      deps.stdout.write(
        opts.json ? `${JSON.stringify(status, null, 2)}\n` : renderLabStatus(status, deps.stdout),
      );
      const anything = status.namespaces.some((n) => n.exists) || status.processes.length > 0;
      deps.setExitCode(status.up ? 0 : anything ? 1 : 3);
    });

  lab
    .command('exec')
    .description(
      `run a command inside a lab namespace (${Object.keys(LAB_NAMESPACES).join('|')} or moat-<name>)`,
    )
    .argument('<namespace>', 'lan, gw, wan, remote (or moat-lan, …)')
    .argument('<command...>', 'the command and its arguments (put them after --)')
    .passThroughOptions()
    .addHelpText('after', '\nExample:\n  moat lab exec lan -- curl -s http://192.0.2.10/echo')
    .action(async (name: string, argv: string[]) => {
      requireRoot(deps.isRoot);
      const ns = resolveLabNamespace(name);
      if (!(await namespaceExists(ns))) {
        throw new CliError(`${ns} does not exist`, {
          hint: 'start the lab first: sudo moat lab up',
          exitCode: 2,
        });
      }
      // passThroughOptions keeps a leading `--` in the operands; it is ours, not the command's.
      const command = argv[0] === '--' ? argv.slice(1) : argv;
      if (command.length === 0) {
        throw new CliError('no command given', { hint: 'e.g. moat lab exec lan -- ip addr', exitCode: 2 });
      }
      deps.setExitCode(await labExec(ns, command));
    });
}

export function resolveLabNamespace(name: string) {
  const ns = resolveNamespace(name);
  if (!ns) {
    throw new CliError(`unknown lab namespace '${name}'`, {
      hint: `use one of: ${Object.keys(LAB_NAMESPACES).join(', ')} (or ${Object.values(LAB_NAMESPACES).join(', ')})`,
      exitCode: 2,
    });
  }
  return ns;
}
