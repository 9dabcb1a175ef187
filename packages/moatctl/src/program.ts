import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { basename } from 'node:path';
import type { QosClassView, SessionListing } from '@moat/bus';
import type { controlV1 as pb } from '@moat/proto';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify as toYaml } from 'yaml';
import { CliError, ControlGateway, resolveAddress } from './client.js';
import {
  decodeAnswers,
  diffText,
  historyTable,
  outcomeName,
  qosTable,
  sessionsTable,
  statusProblems,
  statusTable,
  violationLines,
} from './render.js';

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const version = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1)
    throw new InvalidArgumentError('a version is a whole number ≥ 1 (see `moatctl history`)');
  return n;
};
const positive = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a whole number ≥ 1');
  return n;
};
const defaultAuthor = () => `${process.env.SUDO_USER || userInfo().username}@${hostname()}`;

function readPolicyFile(file: string): string {
  try {
    return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'it is a directory'
            : (err as Error).message;
    throw new CliError(`cannot read policy file ${file}: ${why}`, 66);
  }
}

/** The moatctl command tree. `io` is injectable so tests can capture output. */
export function buildProgram(io: Io): Command {
  const program = new Command('moatctl')
    .description(
      'Command-line client of the Moat control API: policy apply, history, diff, rollback, status, and the live state of the gateway (show sessions, show qos).',
    )
    .option(
      '--addr <address>',
      'control service address (host:port or unix:///path); default: MOAT_CONTROL_ADDR, the lab socket, then 127.0.0.1:50051',
    )
    .option('--timeout <ms>', 'deadline for each call in milliseconds', positive, 10_000)
    .option('--json', 'print machine-readable JSON')
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    // Before any .command(): commander copies this setting to subcommands when they are created.
    .exitOverride();

  const ctx = () => {
    const o = program.opts<{ addr?: string; timeout: number; json?: boolean }>();
    return { gw: new ControlGateway(resolveAddress(o.addr), o.timeout), json: Boolean(o.json) };
  };
  const print = (json: boolean, data: unknown, text: string) =>
    io.out(json ? JSON.stringify(data, null, 2) : text);
  const run =
    <A extends unknown[]>(fn: (c: ReturnType<typeof ctx>, ...args: A) => Promise<void>) =>
    async (...args: A) => {
      const c = ctx();
      try {
        await fn(c, ...args);
      } finally {
        c.gw.close();
      }
    };

  program
    .command('apply')
    .description(
      'validate a policy and make it the current version (every bad field is listed; nothing is stored on error)',
    )
    .requiredOption('-f, --file <path>', 'policy YAML or JSON file ("-" for stdin)')
    .option('--dry-run', 'validate only')
    .option('-m, --comment <text>', 'why this change', '')
    .option('--author <name>', 'recorded with the version', defaultAuthor())
    .option('--wait', 'wait until every service runs the new version and show how long it took')
    .action(
      run(
        async (
          { gw, json },
          opts: { file: string; dryRun?: boolean; comment: string; author: string; wait?: boolean },
        ) => {
          const document = readPolicyFile(opts.file);
          const res = await gw.apply({
            document,
            sourceName: opts.file === '-' ? '<stdin>' : basename(opts.file),
            author: opts.author,
            comment: opts.comment,
            dryRun: Boolean(opts.dryRun),
          });
          const outcome = outcomeName(res.outcome);
          let rollout: pb.StatusResponse | undefined;
          if (opts.wait && outcome === 'applied')
            rollout = await waitForRollout(gw, res.version?.version ?? 0);
          if (json) io.out(JSON.stringify({ ...res, outcome, rollout }, null, 2));
          else if (outcome === 'rejected') {
            io.err(
              `${opts.file} is invalid (${res.violations.length} problem${res.violations.length === 1 ? '' : 's'}):\n` +
                `${violationLines(res.violations)}\nnothing was stored; the running policy is ${res.version ? `still v${res.version.version}` : 'unchanged (none applied yet)'}.`,
            );
          } else if (outcome === 'valid') io.out(`${opts.file} is valid (dry run: nothing stored)`);
          else if (outcome === 'unchanged')
            io.out(`unchanged: ${opts.file} equals the current version v${res.version?.version}`);
          else {
            io.out(
              `applied: version v${res.version?.version} (sha256 ${res.version?.sha256.slice(0, 12)}) is now current`,
            );
            if (rollout) io.out(statusTable(rollout));
          }
          if (outcome === 'rejected') throw new CliError('', 1);
          if (rollout?.services.some((s) => statusProblems(s).length > 0)) throw new CliError('', 1);
        },
      ),
    );

  program
    .command('get')
    .description('print a stored policy version (default: the current one)')
    .argument('[version]', 'version number', version)
    .addOption(
      new Option('-o, --output <format>', 'yaml (as applied, with comments), json (normalised)')
        .choices(['yaml', 'json'])
        .default('yaml'),
    )
    .action(
      run(async ({ gw, json }, v: number | undefined, opts: { output: string }) => {
        const res = await gw.get(v ?? 0);
        const policy = JSON.parse(res.policyJson) as unknown;
        if (json || opts.output === 'json') io.out(JSON.stringify({ version: res.version, policy }, null, 2));
        else io.out(res.source || toYaml(policy));
      }),
    );

  program
    .command('diff')
    .description('show what changed between two versions')
    .argument('<from>', 'older version', version)
    .argument('<to>', 'newer version', version)
    .action(
      run(async ({ gw, json }, from: number, to: number) => {
        const res = await gw.diff(from, to);
        print(json, res, diffText(res));
      }),
    );

  program
    .command('history')
    .description('list stored versions, newest first (* marks the current one)')
    .option('-n, --limit <n>', 'how many', positive, 20)
    .action(
      run(async ({ gw, json }, opts: { limit: number }) => {
        const res = await gw.history(opts.limit);
        print(json, res, res.versions.length ? historyTable(res) : 'no policy has been applied yet');
      }),
    );

  program
    .command('rollback')
    .description('make an older version current again (stored as a new version)')
    .argument('<version>', 'version to return to', version)
    .option('-m, --comment <text>', 'why', '')
    .option('--author <name>', 'recorded with the version', defaultAuthor())
    .action(
      run(async ({ gw, json }, v: number, opts: { comment: string; author: string }) => {
        const res = await gw.rollback({ version: v, author: opts.author, comment: opts.comment });
        const outcome = outcomeName(res.outcome);
        print(
          json,
          { ...res, outcome },
          outcome === 'unchanged'
            ? `unchanged: v${v} has the same content as the current version v${res.version?.version}`
            : `rolled back: v${res.version?.version} is now current, with the content of v${v}`,
        );
      }),
    );

  program
    .command('status')
    .description(
      'health and applied policy version of every service; exits 1 when any is unhealthy, unreachable or lagging',
    )
    .option('--wait <ms>', 'how long to wait for services to answer', positive, 500)
    .action(
      run(async ({ gw, json }, opts: { wait: number }) => {
        const res = await gw.status(opts.wait);
        print(json, res, statusTable(res));
        if (res.services.some((s) => statusProblems(s).length > 0)) throw new CliError('', 1);
      }),
    );

  const show = program.command('show').description("live state of the gateway's services (sessions, qos)");
  show
    .command('sessions')
    .description("the firewall's connection tracking table: each flow, its state and the NAT it went through")
    .option('--source <address>', 'only flows from or NATed back to this address')
    .option('--destination <address>', 'only flows to this address (before or after NAT)')
    .option('--protocol <name>', 'tcp, udp, icmp, …')
    .option('--port <n>', 'only flows with this port at either end', positive)
    .option('--state <state>', 'TCP state, e.g. ESTABLISHED, TIME_WAIT')
    .option('-n, --limit <n>', 'at most this many per gateway (up to 2000)', positive, 100)
    .option('--wait <ms>', 'how long to wait for firewall instances to answer', positive, 1000)
    .action(
      run(async ({ gw, json }, opts: Record<string, unknown> & { wait: number }) => {
        const { wait, ...filters } = opts;
        const res = await gw.query('firewall', 'sessions', filters, wait);
        const answers = decodeAnswers<SessionListing>(res);
        print(json, answers, sessionsTable(answers));
        if (answers.some((a) => a.error)) throw new CliError('', 1);
      }),
    );
  show
    .command('qos')
    .description(
      'every QoS class on every shaped interface: configured rate and ceiling, current rate, counters',
    )
    .option('--wait <ms>', 'how long to wait for qos instances to answer', positive, 1000)
    .action(
      run(async ({ gw, json }, opts: { wait: number }) => {
        const answers = decodeAnswers<QosClassView[]>(await gw.query('qos', 'classes', {}, opts.wait));
        print(json, answers, qosTable(answers));
        if (answers.some((a) => a.error)) throw new CliError('', 1);
      }),
    );

  return program;
}

/** Polls status until no service lags behind `version` (10 s at most). */
async function waitForRollout(gw: ControlGateway, version: number): Promise<pb.StatusResponse> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const s = await gw.status(300);
    const behind = s.services.filter((x) => x.reachable && x.policyVersion < version);
    if (behind.length === 0 || Date.now() > deadline) return s;
  }
}
