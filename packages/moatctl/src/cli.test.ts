import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { QosClassView, SessionListing } from '@moat/bus';
import { controlV1 as pb } from '@moat/proto';
import { runCommand } from '@moat/testkit';
import { CommanderError } from 'commander';
import { CliError, DEFAULT_ADDR, LAB_SOCKET, resolveAddress } from './client.js';
import { buildProgram } from './program.js';
import {
  bits,
  decodeAnswers,
  diffText,
  historyTable,
  outcomeName,
  qosTable,
  sessionsTable,
  statusProblems,
  statusTable,
  table,
  violationLines,
} from './render.js';

const instance = (over: Partial<pb.ServiceInstanceStatus> = {}): pb.ServiceInstanceStatus => ({
  service: 'proxy',
  instance: 'gw-1',
  version: '0.1.0',
  healthy: true,
  ready: true,
  reachable: true,
  policyVersion: 3,
  policyCreatedAt: '2025-01-01T00:00:00.000Z',
  policyAppliedAt: '2025-01-01T00:00:00.012Z',
  policyLatencyMs: 12,
  lagging: false,
  failedVersion: 0,
  failedError: '',
  startedAt: '2025-01-01T00:00:00.000Z',
  checks: { redis: 'ok', nats: 'ok', policy: 'ok' },
  detailsJson: '',
  ...over,
});

describe('resolveAddress', () => {
  const labUp = existsSync(LAB_SOCKET);

  test('resolveAddress - the --addr flag wins over everything', () => {
    assert.equal(resolveAddress('10.0.0.1:1234', { MOAT_CONTROL_ADDR: '10.0.0.2:1' }), '10.0.0.1:1234');
    assert.equal(resolveAddress('unix:///tmp/c.sock', {}), 'unix:///tmp/c.sock');
  });

  test('resolveAddress - MOAT_CONTROL_ADDR comes next', () => {
    assert.equal(resolveAddress(undefined, { MOAT_CONTROL_ADDR: '10.0.0.2:9' }), '10.0.0.2:9');
    assert.equal(
      resolveAddress('', { MOAT_CONTROL_ADDR: '10.0.0.2:9' }),
      '10.0.0.2:9',
      'an empty flag is no flag',
    );
  });

  test('resolveAddress - without flag or variable: the lab socket when present, else the local default', () => {
    assert.equal(DEFAULT_ADDR, '127.0.0.1:50051');
    assert.equal(resolveAddress(undefined, {}), labUp ? `unix://${LAB_SOCKET}` : DEFAULT_ADDR);
    assert.equal(
      resolveAddress(undefined, { MOAT_CONTROL_ADDR: '' }),
      labUp ? `unix://${LAB_SOCKET}` : DEFAULT_ADDR,
    );
  });

  // The lab socket branch, for real: a child in its own mount namespace gets a private /run holding
  // the socket path, so nothing on this host changes. Needs root (CAP_SYS_ADMIN) and unshare.
  const canUnshare =
    spawnSync('unshare', ['-m', '--propagation', 'private', 'true'], { stdio: 'ignore', timeout: 5000 })
      .status === 0;
  test('resolveAddress - a present lab socket is used before the default, but not before the variable or flag', {
    skip: canUnshare ? false : 'needs unshare -m (root) to fake /run/moat-lab privately',
  }, async () => {
    const clientUrl = new URL('./client.js', import.meta.url).href;
    const script = `
        const { resolveAddress } = await import(${JSON.stringify(clientUrl)});
        console.log(JSON.stringify([
          resolveAddress(undefined, {}),
          resolveAddress(undefined, { MOAT_CONTROL_ADDR: 'h:1' }),
          resolveAddress('f:2', { MOAT_CONTROL_ADDR: 'h:1' }),
        ]));`;
    const shell = `mount -t tmpfs moat-test /run && mkdir -p /run/moat-lab && : > ${LAB_SOCKET} && exec "$0" --input-type=module -e "$1"`;
    const out = await run('unshare', [
      '-m',
      '--propagation',
      'private',
      'sh',
      '-c',
      shell,
      process.execPath,
      script,
    ]);
    assert.equal(out.code, 0, out.stderr);
    assert.deepEqual(JSON.parse(out.stdout), [`unix://${LAB_SOCKET}`, 'h:1', 'f:2']);
  });

  test('resolveAddress - moatctl itself dials the lab socket when it exists (and says so when nothing answers)', {
    skip: canUnshare ? false : 'needs unshare -m (root) to fake /run/moat-lab privately',
  }, async () => {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    const shell = `mount -t tmpfs moat-test /run && mkdir -p /run/moat-lab && : > ${LAB_SOCKET} && exec "$0" "$1" --timeout 2000 history`;
    const env = { ...process.env };
    delete env.MOAT_CONTROL_ADDR;
    const out = await run(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', shell, process.execPath, main],
      env,
    );
    assert.equal(out.code, 69, out.stderr);
    assert.match(
      out.stderr,
      new RegExp(`cannot reach the control service at unix://${LAB_SOCKET.replaceAll('.', '\\.')}`),
    );
  });
});

const run = (cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) =>
  runCommand(cmd, args, { env, timeoutMs: 15_000 });

describe('render', () => {
  test('render - statusProblems is empty for a healthy, ready, current instance', () => {
    assert.deepEqual(statusProblems(instance()), []);
  });

  test('render - statusProblems flags a lagging instance', () => {
    assert.deepEqual(statusProblems(instance({ lagging: true, policyVersion: 2 })), [
      'LAGGING behind the current policy',
    ]);
  });

  test('render - statusProblems flags an unreachable service (and its lag) without inventing health', () => {
    const p = statusProblems(
      instance({
        reachable: false,
        healthy: false,
        ready: false,
        instance: '',
        policyVersion: 0,
        lagging: true,
        checks: {},
      }),
    );
    assert.deepEqual(p, ['not answering', 'LAGGING behind the current policy']);
  });

  test('render - statusProblems names the failing readiness checks and a failed policy', () => {
    const p = statusProblems(
      instance({
        ready: false,
        checks: { redis: 'check timed out', nats: 'ok', policy: 'ok' },
        failedVersion: 4,
        failedError: 'nft: syntax error',
      }),
    );
    assert.deepEqual(p, ['not ready (redis: check timed out)', 'failed to apply v4: nft: syntax error']);
    assert.deepEqual(statusProblems(instance({ healthy: false })), ['unhealthy']);
  });

  test('render - statusTable shows each instance, marks lagging and unreachable ones, and the current version', () => {
    const out = statusTable({
      currentVersion: 3,
      services: [
        instance({ service: 'control', instance: 'c-1' }),
        instance({
          service: 'firewall',
          instance: 'fw-1',
          policyVersion: 2,
          policyLatencyMs: 40,
          lagging: true,
        }),
        instance({
          service: 'waf',
          instance: '',
          reachable: false,
          healthy: false,
          ready: false,
          policyVersion: 0,
          lagging: true,
          checks: {},
        }),
      ],
    });
    const lines = out.split('\n');
    assert.equal(lines[0], 'current policy: v3');
    assert.match(lines[1] ?? '', /^SERVICE\s+INSTANCE\s+HEALTH\s+READY\s+POLICY\s+APPLIED-IN\s+STATUS$/);
    assert.match(lines[2] ?? '', /^control\s+c-1\s+healthy\s+ready\s+v3\s+12 ms\s+ok$/);
    assert.match(
      lines[3] ?? '',
      /^firewall\s+fw-1\s+healthy\s+ready\s+v2\s+40 ms\s+LAGGING behind the current policy$/,
    );
    assert.match(
      lines[4] ?? '',
      /^waf\s+-\s+unreachable\s+-\s+-\s+-\s+not answering; LAGGING behind the current policy$/,
    );
    assert.equal(lines.length, 5);
    // columns line up
    const col = (l: string) => l.indexOf(l.split(/\s{2,}/)[2] ?? '');
    assert.equal(col(lines[2] ?? ''), col(lines[4] ?? ''));
  });

  test('render - statusTable says when no policy was applied yet', () => {
    const out = statusTable({ currentVersion: 0, services: [instance({ policyVersion: 0 })] });
    assert.match(out, /^current policy: none applied yet$/m);
    assert.match(out, /^proxy\s+gw-1\s+healthy\s+ready\s+-\s+-\s+ok$/m);
  });

  test('render - table pads columns and trims trailing spaces', () => {
    assert.equal(
      table(
        ['A', 'BB', 'C'],
        [
          ['xxx', 'y', ''],
          ['z', 'wwww', 'q'],
        ],
      ),
      'A    BB    C\nxxx  y\nz    wwww  q',
    );
  });

  test('render - violationLines gives every violation its path and position', () => {
    assert.equal(
      violationLines([
        { path: 'securityRules[0].action', message: 'bad action', line: 12, column: 5 },
        { path: '', message: 'empty document', line: 0, column: 0 },
      ]),
      '  securityRules[0].action: bad action (line 12:5)\n  <document>: empty document',
    );
  });

  test('render - historyTable stars the current version and notes rollbacks', () => {
    const out = historyTable({
      currentVersion: 2,
      versions: [
        {
          version: 2,
          sha256: 'b'.repeat(64),
          createdAt: 't2',
          author: 'bob',
          comment: 'undo',
          rolledBackFrom: 1,
        },
        {
          version: 1,
          sha256: 'a'.repeat(64),
          createdAt: 't1',
          author: 'alice',
          comment: 'first',
          rolledBackFrom: 0,
        },
      ],
    });
    const lines = out.split('\n');
    assert.match(lines[1] ?? '', /^2\*\s+t2\s+bob\s+b{12}\s+undo \(rollback of 1\)$/);
    assert.match(lines[2] ?? '', /^1\s+t1\s+alice\s+a{12}\s+first$/);
  });

  test('render - diffText marks added, removed and changed paths', () => {
    assert.equal(diffText({ changes: [] }), 'no differences');
    assert.equal(
      diffText({
        changes: [
          { path: 'zones.dmz', kind: 'added', beforeJson: '', afterJson: '{}' },
          { path: 'nat.source[0]', kind: 'removed', beforeJson: '{"name":"x"}', afterJson: '' },
          { path: 'metadata.name', kind: 'changed', beforeJson: '"a"', afterJson: '"b"' },
        ],
      }),
      '+ zones.dmz: {}\n- nat.source[0]: {"name":"x"}\n~ metadata.name: "a" → "b"',
    );
  });

  test('render - sessionsTable shows each flow with its NAT, the counts, and an instance that failed', () => {
    const answers = decodeAnswers<SessionListing>({
      answers: [
        {
          service: 'firewall',
          instance: 'gw-1',
          ok: true,
          error: '',
          resultJson: JSON.stringify({
            matched: 3,
            total: 9,
            sessions: [
              {
                protocol: 'tcp',
                state: 'ESTABLISHED',
                timeout: 300,
                flags: ['ASSURED'],
                original: {
                  source: '10.0.0.5',
                  destination: '192.0.2.10',
                  sourcePort: 40000,
                  destinationPort: 80,
                },
                reply: {
                  source: '10.0.0.1',
                  destination: '10.0.0.5',
                  sourcePort: 3129,
                  destinationPort: 40000,
                },
              },
              {
                protocol: 'icmp',
                timeout: 20,
                flags: [],
                original: { source: '10.0.0.5', destination: '192.0.2.10', icmpType: 8 },
                reply: { source: '192.0.2.10', destination: '203.0.113.1', icmpType: 0 },
              },
            ],
          }),
        },
        { service: 'firewall', instance: 'gw-2', ok: false, resultJson: '', error: 'cannot run conntrack' },
      ],
    });
    const text = sessionsTable(answers);
    assert.match(
      text,
      /^gw-1 +tcp +ESTABLISHED +10\.0\.0\.5:40000 +192\.0\.2\.10:80 +dst→10\.0\.0\.1:3129 +300s$/m,
    );
    assert.match(text, /^gw-1 +icmp\/8 +10\.0\.0\.5 +192\.0\.2\.10 +src→203\.0\.113\.1 +20s$/m);
    assert.match(text, /^gw-1: 2 shown, 3 matched, 9 in the table \(raise --limit or narrow the filter\)$/m);
    assert.match(text, /^gw-2: cannot run conntrack$/m);
  });

  test('render - qosTable stars the default class and prints rates the way tc does', () => {
    const view: QosClassView = {
      interface: 'wan0',
      direction: 'egress',
      class: 'bulk',
      rate: 20e6,
      ceil: 100e6,
      priority: 6,
      isDefault: true,
      device: 'wan0',
      stats: {
        minor: 0xdd8e,
        backlogBytes: 4500,
        borrowed: 0,
        bytes: 1_500_000,
        packets: 1000,
        drops: 2,
        overlimits: 7,
        rateBps: 9_600_000,
        backlogPackets: 3,
      },
    };
    const text = qosTable([
      { instance: 'gw-1', result: [view] },
      { instance: 'gw-2', result: [] },
    ]);
    assert.match(text, /^gw-1 +wan0 +egress +bulk\* +20Mbit +100Mbit +6 +9\.6Mbit +1\.5M +1000 +2 +7 +3$/m);
    assert.match(text, /^gw-2: no interface is shaped/m);
    assert.equal(bits(999), '999');
    assert.equal(bits(1_250_000_000), '1.25G');
  });

  test('render - outcomeName names every outcome', () => {
    assert.equal(outcomeName(pb.ApplyResponse_Outcome.OUTCOME_APPLIED), 'applied');
    assert.equal(outcomeName(pb.ApplyResponse_Outcome.OUTCOME_UNCHANGED), 'unchanged');
    assert.equal(outcomeName(pb.ApplyResponse_Outcome.OUTCOME_REJECTED), 'rejected');
    assert.equal(outcomeName(pb.ApplyResponse_Outcome.OUTCOME_VALID), 'valid');
    assert.equal(outcomeName(pb.ApplyResponse_Outcome.OUTCOME_UNSPECIFIED), 'unknown');
  });
});

describe('program', () => {
  const capture = () => {
    const io = { stdout: [] as string[], stderr: [] as string[] };
    return {
      io,
      sink: { out: (s: string) => void io.stdout.push(s), err: (s: string) => void io.stderr.push(s) },
    };
  };

  test('program - an unreadable policy file is a CliError with exit code 66, before any call is made', async () => {
    const { sink } = capture();
    const program = buildProgram(sink).exitOverride();
    await assert.rejects(
      program.parseAsync([
        'node',
        'moatctl',
        '--addr',
        '127.0.0.1:1',
        'apply',
        '-f',
        '/nonexistent/policy.yaml',
      ]),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === 66 &&
        /cannot read policy file \/nonexistent\/policy\.yaml: no such file/.test(err.message),
    );
  });

  test('program - --help lists every subcommand through the injected output', async () => {
    const { io, sink } = capture();
    const program = buildProgram(sink).exitOverride();
    await assert.rejects(
      program.parseAsync(['node', 'moatctl', '--help']),
      (err: unknown) => err instanceof CommanderError && err.exitCode === 0,
    );
    const text = io.stdout.join('\n');
    for (const c of ['apply', 'get', 'diff', 'history', 'rollback', 'status'])
      assert.match(text, new RegExp(`^ {2}${c}\\b`, 'm'));
    assert.match(text, /--addr <address>/);
  });
});
