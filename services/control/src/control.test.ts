// End to end: the real control process, the real moatctl binary, real NATS and Redis.
// The tests run in order and share one control (policy versions build on each other).
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type Client,
  credentials,
  Metadata,
  makeClientConstructor,
  type ServiceDefinition,
} from '@grpc/grpc-js';
import { controlV1 as pb } from '@moat/proto';
import { type ServiceKit, startServiceKit } from '@moat/service-kit';
import {
  type CommandResult,
  freePort,
  type ManagedProcess,
  type NatsServer,
  type RedisServer,
  runCommand,
  startNats,
  startProcess,
  startRedis,
  waitFor,
} from '@moat/testkit';
import { service as healthServiceDefinition } from 'grpc-health-check';

// dist/control.test.js → repository root
const root = fileURLToPath(new URL('../../../', import.meta.url));
const controlMain = join(root, 'services/control/dist/main.js');
const moatctlMain = join(root, 'packages/moatctl/dist/main.js');
const policies = join(root, 'examples/policies');
const demoPath = join(policies, 'demo.yaml');
const demoText = readFileSync(demoPath, 'utf8');

/** demo.yaml with another metadata.description: a distinct, valid document. */
const variantText = (description: string) => {
  const text = demoText.replace(/^ {2}description: Lab demo.*$/m, `  description: ${description}`);
  assert.notEqual(text, demoText, 'demo.yaml no longer has the description line this test rewrites');
  return text;
};

// ---------------------------------------------------------------------------------------------
// moatctl, as a user runs it

type CliResult = CommandResult;

let controlAddr = '';

/** Runs the real moatctl binary; kills it after `timeoutMs`. */
async function moatctl(
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
  const env = { ...process.env, MOAT_CONTROL_ADDR: controlAddr, ...opts.env };
  const r = await runCommand(process.execPath, [moatctlMain, ...args], {
    env,
    timeoutMs: opts.timeoutMs ?? 20_000,
  });
  if (r.signal) throw new Error(`moatctl ${args.join(' ')} was killed (${r.signal}); stderr:\n${r.stderr}`);
  return r;
}

const show = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

async function moatctlJson<T>(args: string[], expectCode = 0): Promise<T> {
  const r = await moatctl([...args, '--json']);
  assert.equal(r.code, expectCode, show(r));
  return JSON.parse(r.stdout) as T;
}

// ---------------------------------------------------------------------------------------------
// gRPC clients (in-process) for what a shell cannot time or parallelise well

const HealthClient = makeClientConstructor(healthServiceDefinition as unknown as ServiceDefinition, 'Health');
type HealthCheck = (
  req: { service: string },
  md: Metadata,
  opts: { deadline: Date },
  cb: (err: Error | null, res: { status: string }) => void,
) => void;

function healthCheck(addr: string, service = ''): Promise<string> {
  const client = new HealthClient(addr, credentials.createInsecure()) as unknown as Client & {
    check: HealthCheck;
  };
  return new Promise<string>((resolve, reject) => {
    client.check({ service }, new Metadata(), { deadline: new Date(Date.now() + 1000) }, (err, res) =>
      err ? reject(err) : resolve(res.status),
    );
  }).finally(() => client.close());
}

function grpcApply(
  client: pb.ControlServiceClient,
  document: string,
  comment = '',
): Promise<pb.ApplyResponse> {
  return new Promise((resolve, reject) => {
    client.apply(
      { document, sourceName: 'test.yaml', author: 'control-test', comment, dryRun: false },
      new Metadata(),
      { deadline: new Date(Date.now() + 10_000) },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

// ---------------------------------------------------------------------------------------------
// JSON shapes printed by moatctl --json

interface VersionJson {
  version: number;
  sha256: string;
  author: string;
  comment: string;
  rolledBackFrom: number;
}
interface HistoryJson {
  versions: VersionJson[];
  currentVersion: number;
}
interface GetJson {
  version: VersionJson;
  policy: Record<string, unknown>;
}
interface ServiceJson {
  service: string;
  instance: string;
  healthy: boolean;
  ready: boolean;
  reachable: boolean;
  policyVersion: number;
  lagging: boolean;
  checks: Record<string, string>;
}
interface StatusJson {
  currentVersion: number;
  services: ServiceJson[];
}

// ---------------------------------------------------------------------------------------------

let nats: NatsServer;
let redis: RedisServer;
let control: ManagedProcess;
let client: pb.ControlServiceClient;
let probe: ServiceKit | undefined;
let workDir: string;
/** The probe's engine: when each version reached it (performance.now()). */
const probeApplied = new Map<number, number>();

async function startProbe(): Promise<ServiceKit> {
  return startServiceKit({
    service: 'probe',
    version: '0.0.1',
    config: {
      natsUrl: nats.url,
      redisUrl: redis.url,
      httpHost: '127.0.0.1',
      httpPort: 0,
      instanceId: 'probe-1',
      logLevel: 'silent',
    },
    applyPolicy: (record) => void probeApplied.set(record.version, performance.now()),
    queries: {
      echo: (args) => ({ args }),
      broken: () => {
        throw new Error('the engine is not ready');
      },
    },
    handleSignals: false,
  });
}

before(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'moat-control-test-'));
  [nats, redis] = await Promise.all([startNats(), startRedis()]);
  const [grpcPort, httpPort] = [await freePort(), await freePort()];
  controlAddr = `127.0.0.1:${grpcPort}`;
  const env = {
    MOAT_NATS_URL: nats.url,
    MOAT_REDIS_URL: redis.url,
    MOAT_CONTROL_GRPC_HOST: '127.0.0.1',
    MOAT_CONTROL_GRPC_PORT: String(grpcPort),
    MOAT_CONTROL_HTTP_PORT: String(httpPort),
    MOAT_CONTROL_EXPECTED_SERVICES: 'control,probe',
    MOAT_INSTANCE_ID: 'control-test',
    MOAT_LOG_LEVEL: 'warn',
  };
  // `env` execs node, so the managed pid is control's own and SIGTERM reaches it directly.
  control = startProcess('control', 'env', [
    ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
    process.execPath,
    controlMain,
  ]);
  await waitFor('control to serve gRPC', async () => (await healthCheck(controlAddr)) === 'SERVING', {
    proc: control,
    timeoutMs: 15_000,
  });
  client = new pb.ControlServiceClient(controlAddr, credentials.createInsecure());
});

after(async () => {
  client?.close();
  await probe?.shutdown();
  await control?.stop();
  await Promise.all([nats?.stop(), redis?.stop()]);
  rmSync(workDir, { recursive: true, force: true });
});

test('control - answers the standard gRPC health check (grpc.health.v1) with SERVING', async () => {
  assert.equal(await healthCheck(controlAddr, ''), 'SERVING');
  assert.equal(await healthCheck(controlAddr, 'moat.control.v1.ControlService'), 'SERVING');
  await assert.rejects(healthCheck(controlAddr, 'no.such.Service'), /NOT_FOUND/);
});

test('moatctl apply - demo.yaml is stored as version 1 and exits 0', async () => {
  const r = await moatctl(['apply', '-f', demoPath, '-m', 'first']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^applied: version v1 \(sha256 [0-9a-f]{12}\) is now current$/m);
  const h = await moatctlJson<HistoryJson>(['history']);
  assert.equal(h.currentVersion, 1);
  assert.deepEqual(
    h.versions.map((v) => [v.version, v.comment]),
    [[1, 'first']],
  );
});

test('moatctl status - lists control and a service kit started while control runs, with health, readiness and policy version', async () => {
  probe = await startProbe();
  assert.equal(
    probe.policy.state().applied?.version,
    1,
    'the probe catches up on the current version at start',
  );
  const s = await moatctlJson<StatusJson>(['status']);
  assert.equal(s.currentVersion, 1);
  const byService = new Map(s.services.map((x) => [x.service, x]));
  assert.deepEqual([...byService.keys()].sort(), ['control', 'probe'], JSON.stringify(s));
  for (const name of ['control', 'probe']) {
    const x = byService.get(name) as ServiceJson;
    assert.equal(x.reachable, true, name);
    assert.equal(x.healthy, true, name);
    assert.equal(x.ready, true, name);
    assert.equal(x.policyVersion, 1, name);
    assert.equal(x.lagging, false, name);
    assert.deepEqual(x.checks, { redis: 'ok', nats: 'ok', policy: 'ok' }, name);
  }
  assert.equal(byService.get('control')?.instance, 'control-test');
  assert.equal(byService.get('probe')?.instance, 'probe-1');

  const text = await moatctl(['status']);
  assert.equal(text.code, 0, show(text));
  assert.match(text.stdout, /^current policy: v1$/m);
  assert.match(text.stdout, /^control\s+control-test\s+healthy\s+ready\s+v1\s+\d+ ms\s+ok$/m);
  assert.match(text.stdout, /^probe\s+probe-1\s+healthy\s+ready\s+v1\s+\d+ ms\s+ok$/m);
});

test('control Query - every instance of the asked service answers; a failed one says why', async () => {
  const query = (req: Partial<pb.QueryRequest>) =>
    new Promise<pb.QueryResponse>((resolve, reject) =>
      client.query({ service: 'probe', query: 'echo', argsJson: '', waitMs: 300, ...req }, (err, res) =>
        err ? reject(err) : resolve(res),
      ),
    );
  const echo = await query({ argsJson: '{"limit":3}' });
  assert.deepEqual(
    echo.answers.map((a) => [a.instance, a.ok, JSON.parse(a.resultJson)]),
    [['probe-1', true, { args: { limit: 3 } }]],
  );
  const broken = await query({ query: 'broken' });
  assert.deepEqual(
    broken.answers.map((a) => [a.ok, a.error]),
    [[false, 'the engine is not ready']],
  );
  await assert.rejects(query({ argsJson: '[1]' }), /INVALID_ARGUMENT.*JSON object/);
  await assert.rejects(query({ service: 'Probe.*' }), /INVALID_ARGUMENT/);
});

test('moatctl show - a service that does not run: exit 1, naming it and what to check', async () => {
  const r = await moatctl(['show', 'qos', '--wait', '200']);
  assert.equal(r.code, 1, show(r));
  assert.match(
    r.stderr,
    /no qos instance answered the classes query; is the qos service running\? \(moatctl status\)/,
  );
});

test('moatctl apply --wait - shows the new version reaching every service', async () => {
  const file = join(workDir, 'v2.yaml');
  writeFileSync(file, variantText('version two'));
  const r = await moatctl(['apply', '-f', file, '--wait']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^applied: version v2 /m);
  assert.match(r.stdout, /^current policy: v2$/m);
  assert.match(r.stdout, /^control\s+control-test\s+healthy\s+ready\s+v2\s+\d+ ms\s+ok$/m);
  assert.match(r.stdout, /^probe\s+probe-1\s+healthy\s+ready\s+v2\s+\d+ ms\s+ok$/m);
  assert.equal(probe?.policy.state().applied?.version, 2);
});

test('policy propagation - a new version reaches another service within 1 s of apply returning', async () => {
  const res = await grpcApply(client, variantText('version three'));
  const returned = performance.now();
  assert.equal(res.outcome, pb.ApplyResponse_Outcome.OUTCOME_APPLIED);
  const version = res.version?.version ?? 0;
  assert.equal(version, 3);
  await waitFor(
    'the probe to apply version 3',
    async () => probe?.policy.state().applied?.version === version,
    {
      timeoutMs: 2000,
    },
  );
  const appliedAt = probeApplied.get(version) as number;
  const ms = Math.max(0, appliedAt - returned);
  const storedToApplied = probe?.policy.state().applied?.latencyMs;
  console.log(
    `# propagation: probe applied v${version} ${ms.toFixed(1)} ms after apply returned ` +
      `(${(appliedAt - returned).toFixed(1)} ms raw; stored→applied ${storedToApplied} ms)`,
  );
  assert.ok(ms < 1000, `the probe applied v${version} ${ms} ms after apply returned`);
});

/** The paths a bad example declares in its "# expect:" line ("<document>" stays as is). */
const expectedPaths = (text: string) =>
  (text.split('\n').find((l) => l.startsWith('# expect:')) ?? '# expect:')
    .slice('# expect:'.length)
    .trim()
    .split(/\s+/)
    .filter(Boolean);

test('moatctl apply - every bad example exits 1, lists each violation with its path, and stores nothing', async () => {
  const before = await moatctlJson<HistoryJson>(['history', '-n', '100']);
  const current = await moatctlJson<GetJson>(['get']);
  const files = readdirSync(join(policies, 'bad')).sort();
  assert.ok(files.length >= 10, files.join(' '));
  const results = await Promise.all(files.map((f) => moatctl(['apply', '-f', join(policies, 'bad', f)])));
  files.forEach((f, i) => {
    const r = results[i] as CliResult;
    assert.equal(r.code, 1, `${f}: ${show(r)}`);
    const m = /is invalid \((\d+) problems?\):\n/.exec(r.stderr);
    assert.ok(m, `${f}: ${show(r)}`);
    const lines = r.stderr.split('\n').filter((l) => /^ {2}\S.*: /.test(l));
    assert.equal(lines.length, Number(m[1]), `${f}: one line per violation\n${r.stderr}`);
    const expected = expectedPaths(readFileSync(join(policies, 'bad', f), 'utf8'));
    for (const path of expected.length ? expected : ['<document>'])
      assert.ok(
        lines.some((l) => l.startsWith(`  ${path}: `)),
        `${f}: no violation at ${path}\n${r.stderr}`,
      );
    assert.match(
      r.stderr,
      new RegExp(`nothing was stored; the running policy is still v${current.version.version}\\.`),
    );
    assert.equal(r.stdout, '', `${f}: nothing on stdout`);
  });

  const afterwards = await moatctlJson<HistoryJson>(['history', '-n', '100']);
  assert.equal(afterwards.versions.length, before.versions.length);
  assert.equal(afterwards.currentVersion, before.currentVersion);
  const still = await moatctlJson<GetJson>(['get']);
  assert.deepEqual(still.version, current.version);
  assert.equal(
    probe?.policy.state().applied?.version,
    current.version.version,
    'the running version is unchanged',
  );
});

test('moatctl apply --json - a rejected policy prints its violations as JSON and exits 1', async () => {
  const res = await moatctlJson<{ outcome: string; violations: { path: string; line: number }[] }>(
    ['apply', '-f', join(policies, 'bad', 'bad-ports.yaml')],
    1,
  );
  assert.equal(res.outcome, 'rejected');
  assert.ok(
    res.violations.some((v) => v.path === 'objects.services.zero.ports' && v.line > 0),
    JSON.stringify(res),
  );
});

test('moatctl apply - a file that does not exist exits 66 naming the file', async () => {
  const missing = join(workDir, 'no-such-policy.yaml');
  const r = await moatctl(['apply', '-f', missing]);
  assert.equal(r.code, 66, show(r));
  assert.match(
    r.stderr,
    new RegExp(`^moatctl: cannot read policy file ${missing.replaceAll('.', '\\.')}: no such file`, 'm'),
  );
});

test('moatctl apply - --dry-run validates and stores nothing; the same policy again is "unchanged"', async () => {
  const before = await moatctlJson<HistoryJson>(['history']);
  const dry = await moatctl(['apply', '-f', demoPath, '--dry-run']);
  assert.equal(dry.code, 0, show(dry));
  assert.match(dry.stdout, /is valid \(dry run: nothing stored\)/);
  const current = await moatctl(['get']);
  const file = join(workDir, 'current.yaml');
  writeFileSync(file, current.stdout);
  const same = await moatctl(['apply', '-f', file]);
  assert.equal(same.code, 0, show(same));
  assert.match(
    same.stdout,
    new RegExp(`^unchanged: .* equals the current version v${before.currentVersion}$`, 'm'),
  );
  assert.equal((await moatctlJson<HistoryJson>(['history'])).versions.length, before.versions.length);
});

test('moatctl get - prints a version as applied (YAML with comments), or normalised with --json', async () => {
  const yaml = await moatctl(['get', '1']);
  assert.equal(yaml.code, 0, show(yaml));
  assert.equal(yaml.stdout, `${demoText}\n`);
  const json = await moatctlJson<GetJson>(['get', '1']);
  assert.equal(json.version.version, 1);
  assert.equal((json.policy.metadata as { name: string }).name, 'lab-demo');
  const current = await moatctlJson<GetJson>(['get']);
  assert.equal(current.version.version, 3);
  assert.equal((current.policy.metadata as { description: string }).description, 'version three');
});

test('moatctl diff - names the changed paths between two versions', async () => {
  const r = await moatctl(['diff', '1', '2']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^~ metadata\.description: "Lab demo.*" → "version two"$/m);
  const json = await moatctlJson<{ changes: { path: string; kind: string }[] }>(['diff', '1', '2']);
  assert.deepEqual(
    json.changes.map((c) => [c.path, c.kind]),
    [['metadata.description', 'changed']],
  );
  const none = await moatctl(['diff', '2', '2']);
  assert.equal(none.stdout.trim(), 'no differences');
});

test('moatctl history - lists versions newest first and marks the current one', async () => {
  const r = await moatctl(['history']);
  assert.equal(r.code, 0, show(r));
  const rows = r.stdout.trim().split('\n');
  assert.match(rows[0] ?? '', /^VERSION\s+CREATED\s+AUTHOR\s+SHA256\s+COMMENT$/);
  assert.match(rows[1] ?? '', /^3\*\s+\S+\s+control-test\s+[0-9a-f]{12}/);
  assert.match(rows[2] ?? '', /^2\s/);
  assert.match(rows[3] ?? '', /^1\s.*first$/);
  assert.equal(rows.length, 4);
});

test('moatctl rollback - makes a new version with the content of the old one', async () => {
  const r = await moatctl(['rollback', '1', '-m', 'back to the demo']);
  assert.equal(r.code, 0, show(r));
  assert.match(r.stdout, /^rolled back: v4 is now current, with the content of v1$/m);
  const [v1, v4] = await Promise.all([
    moatctlJson<GetJson>(['get', '1']),
    moatctlJson<GetJson>(['get', '4']),
  ]);
  assert.deepEqual(v4.policy, v1.policy);
  assert.equal(v4.version.sha256, v1.version.sha256);
  assert.equal(v4.version.rolledBackFrom, 1);
  assert.equal(v4.version.comment, 'back to the demo');
  const h = await moatctlJson<HistoryJson>(['history']);
  assert.equal(h.currentVersion, 4);
  assert.deepEqual(
    h.versions.map((v) => v.version),
    [4, 3, 2, 1],
  );
  const diff = await moatctl(['diff', '3', '4']);
  assert.match(diff.stdout, /^~ metadata\.description: "version three" → "Lab demo/m);
  await waitFor('the probe to run version 4', async () => probe?.policy.state().applied?.version === 4, {
    timeoutMs: 2000,
  });
});

test('moatctl get/rollback - an unknown version exits 1 and points at history', async () => {
  for (const args of [
    ['get', '99'],
    ['rollback', '99'],
    ['diff', '1', '99'],
  ]) {
    const r = await moatctl(args);
    assert.equal(r.code, 1, show(r));
    assert.match(r.stderr, /policy version 99 does not exist; list versions with `moatctl history`/);
  }
});

test('moatctl --help - works for the program and every subcommand (exit 0)', async () => {
  const subcommands = ['apply', 'get', 'diff', 'history', 'rollback', 'status', 'show'];
  const results = await Promise.all([moatctl(['--help']), ...subcommands.map((c) => moatctl([c, '--help']))]);
  const top = results[0] as CliResult;
  assert.equal(top.code, 0, show(top));
  for (const c of subcommands) assert.match(top.stdout, new RegExp(`^ {2}${c}\\b`, 'm'));
  subcommands.forEach((c, i) => {
    const r = results[i + 1] as CliResult;
    assert.equal(r.code, 0, `${c} --help: ${show(r)}`);
    assert.match(r.stdout, new RegExp(`^Usage: moatctl ${c} `, 'm'));
  });
});

test('moatctl - a usage error on the program exits 2', async () => {
  const results = await Promise.all([moatctl(['--bogus']), moatctl(['no-such-command'])]);
  for (const r of results) {
    assert.equal(r.code, 2, show(r));
    assert.match(r.stderr, /run with --help for usage/);
  }
});

test('moatctl - a usage error on a subcommand exits 2', async () => {
  const results = await Promise.all([moatctl(['apply']), moatctl(['get', 'abc']), moatctl(['diff', '1'])]);
  for (const r of results) assert.equal(r.code, 2, show(r));
});

test('moatctl - an unreachable control exits 69 and says how to start Moat', async () => {
  const port = await freePort();
  const r = await moatctl(['--addr', `127.0.0.1:${port}`, '--timeout', '3000', 'status']);
  assert.equal(r.code, 69, show(r));
  assert.match(r.stderr, new RegExp(`cannot reach the control service at 127\\.0\\.0\\.1:${port}`));
  assert.match(r.stderr, /Start it with `moat dev`/);
  assert.match(r.stderr, /--addr or MOAT_CONTROL_ADDR/);
  assert.ok(r.ms < 10_000, `took ${r.ms} ms`);
});

test('control - 20 parallel applies of distinct documents get 20 distinct versions, none lost', async () => {
  const before = await moatctlJson<HistoryJson>(['history', '-n', '100']);
  const docs = Array.from({ length: 20 }, (_, i) => variantText(`parallel ${i}`));
  const results = await Promise.all(docs.map((d, i) => grpcApply(client, d, `parallel ${i}`)));
  for (const r of results) assert.equal(r.outcome, pb.ApplyResponse_Outcome.OUTCOME_APPLIED);
  const versions = results.map((r) => r.version?.version ?? 0);
  assert.equal(new Set(versions).size, 20, `versions: ${versions.join(' ')}`);
  const first = before.currentVersion + 1;
  assert.deepEqual(
    [...versions].sort((a, b) => a - b),
    Array.from({ length: 20 }, (_, i) => first + i),
  );

  const h = await moatctlJson<HistoryJson>(['history', '-n', '100']);
  assert.equal(h.versions.length, before.versions.length + 20);
  assert.equal(h.currentVersion, first + 19);
  // every version holds the document its caller sent
  const comments = new Map(h.versions.map((v) => [v.version, v.comment]));
  for (const [i, r] of results.entries())
    assert.equal(comments.get(r.version?.version ?? 0), `parallel ${i}`);
  const sample = results[7]?.version?.version ?? 0;
  const got = await moatctlJson<GetJson>(['get', String(sample)]);
  assert.equal((got.policy.metadata as { description: string }).description, 'parallel 7');
  await waitFor(
    'the probe to run the last version',
    async () => probe?.policy.state().applied?.version === first + 19,
    { timeoutMs: 3000 },
  );
});

test('moatctl status - an expected service that stopped is shown unreachable and status exits 1', async () => {
  await probe?.shutdown();
  probe = undefined;
  const s = await moatctlJson<StatusJson>(['status'], 1);
  const p = s.services.find((x) => x.service === 'probe');
  assert.ok(p, JSON.stringify(s));
  assert.equal(p.reachable, false);
  assert.equal(p.instance, '');
  const c = s.services.find((x) => x.service === 'control');
  assert.equal(c?.reachable, true);
  assert.equal(c?.policyVersion, s.currentVersion);

  const text = await moatctl(['status']);
  assert.equal(text.code, 1, show(text));
  assert.match(
    text.stdout,
    /^probe\s+-\s+unreachable\s+-\s+-\s+-\s+not answering; LAGGING behind the current policy$/m,
  );
  assert.equal(text.stderr, '');
});

test('control - SIGTERM stops it gracefully: exit 0 within a few seconds', async () => {
  const started = Date.now();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    control.child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  control.child.kill('SIGTERM');
  const result = await Promise.race([
    exited,
    new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 8000).unref()),
  ]);
  const ms = Date.now() - started;
  assert.notEqual(result, 'timeout', `control did not exit within 8 s; output:\n${control.output()}`);
  assert.deepEqual(result, { code: 0, signal: null }, control.output());
  assert.ok(ms < 5000, `took ${ms} ms`);
  console.log(`# control stopped ${ms} ms after SIGTERM`);
  await assert.rejects(healthCheck(controlAddr), /UNAVAILABLE/);
});
