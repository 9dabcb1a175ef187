import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot } from '../paths.js';
import { isRunning } from '../proc.js';
import { SERVICES } from '../services.js';
import { MOAT_WITH_FAKE_BIN, MoatProcess, runMoat } from '../testing/cli-process.js';
import { FAKE_SERVICE } from '../testing/fake-registry.js';
import { portIsFree } from '../testing/ports.js';
import { allPorts, planDevPorts } from './ports.js';

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), 'moat-dev-test-'));
  dirs.push(dir);
  return dir;
};
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const startedPids = (output: string) =>
  [...output.matchAll(/started (\S+) \(pid (\d+)\)/g)].map((m) => ({ name: m[1], pid: Number(m[2]) }));

/** Starts `moat dev` (with the fake service in its registry) and waits until it says it is ready. */
async function startDev(args: string[]) {
  const dev = new MoatProcess(['dev', ...args, '--dir', tempDir()], { bin: MOAT_WITH_FAKE_BIN });
  await dev.waitForOutput(/moat dev is ready/, 60_000);
  return dev;
}

describe('dev', () => {
  test('dev - starts NATS, Redis and a service on a shifted base port, and SIGINT stops every child in reverse order', async () => {
    const base = 24200;
    const ports = planDevPorts([...SERVICES, FAKE_SERVICE], base);
    const dev = await startDev(['--base-port', String(base), '--services', 'fake']);
    const pids = startedPids(dev.stdout);
    assert.deepEqual(
      pids.map((p) => p.name),
      ['nats', 'redis', 'fake'],
    );

    const env = (await (await fetch(`http://127.0.0.1:${ports.services.fake?.http}/env`)).json()) as Record<
      string,
      string
    >;
    assert.equal(env.MOAT_NATS_URL, `nats://127.0.0.1:${base}`);
    assert.equal(env.MOAT_REDIS_URL, `redis://127.0.0.1:${base + 2}`);
    assert.equal(env.MOAT_FAKE_EXPECTED_SERVICES, 'fake');
    assert.match(
      dev.stdout,
      /\[fake\] +\d\d:\d\d:\d\d\.\d{3} INFO +fake service listening/,
      'pino lines are prettified',
    );
    assert.match(dev.stdout, /\[nats\] .*Server is ready/);

    dev.child.kill('SIGINT');
    const result = await dev.finished(30_000);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const order = ['fake stopped', 'redis stopped', 'nats stopped'].map((line) =>
      result.stdout.indexOf(line),
    );
    assert.ok(
      order.every((at, k) => at >= 0 && (k === 0 || at > (order[k - 1] ?? 0))),
      `stop order: ${order}`,
    );
    for (const { name, pid } of pids)
      assert.equal(isRunning(pid), false, `${name} (pid ${pid}) still running`);
    for (const { name, port } of allPorts(ports).filter((p) => !p.name.startsWith('control'))) {
      assert.ok(await portIsFree(port), `${name} port ${port} still in use`);
    }
  });

  test('dev - a child dying unexpectedly is reported and stops everything with a non-zero exit', async () => {
    const dev = await startDev(['--base-port', '24220', '--no-services']);
    const pids = startedPids(dev.stdout);
    const redis = pids.find((p) => p.name === 'redis');
    assert.ok(redis);
    process.kill(redis.pid, 'SIGKILL');
    const result = await dev.finished(30_000);
    assert.equal(result.code, 1);
    assert.match(result.stdout, /redis \(pid \d+\) killed by SIGKILL unexpectedly: stopping everything/);
    for (const { name, pid } of pids)
      assert.equal(isRunning(pid), false, `${name} (pid ${pid}) still running`);
  });

  test('dev - refuses to start when a port is taken, naming it and suggesting --base-port', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(24240, '127.0.0.1', resolve));
    try {
      const result = await runMoat(['dev', '--base-port', '24240', '--no-services', '--dir', tempDir()]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /port 24240 \(nats\) is already in use/);
      assert.match(result.stderr, /--base-port/);
    } finally {
      blocker.close();
    }
  });

  test('dev - runs the real control service when it is built', async (t) => {
    if (!existsSync(join(repoRoot(), 'services/control/dist/main.js'))) {
      console.error(
        '\n!!!!!!!! SKIPPED: services/control/dist/main.js is not built — `moat dev` with control untested !!!!!!!!\n',
      );
      return t.skip('services/control is not built yet (run `npm run build`)');
    }
    const dev = await startDev(['--base-port', '24260', '--services', 'control']);
    assert.match(dev.stdout, /moatctl address: 127\.0\.0\.1:24264/);
    dev.child.kill('SIGINT');
    const result = await dev.finished(30_000);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    for (const { name, pid } of startedPids(result.stdout))
      assert.equal(isRunning(pid), false, `${name} still running`);
  });
});
