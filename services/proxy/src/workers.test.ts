import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand, waitFor } from '@moat/testkit';
import {
  type Origin,
  type ProxyHarness,
  permitAllPolicy,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from './testing/harness.js';

const POLICY = permitAllPolicy('workers-test');

/** The direct children of a process (the supervisor's workers). */
function childrenOf(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
    readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function metric(h: ProxyHarness, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${h.httpPort}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? Number.NaN);
}

async function readiness(h: ProxyHarness): Promise<{ status: number; checks: Record<string, string> }> {
  const res = await fetch(`http://127.0.0.1:${h.httpPort}/readyz`);
  return { status: res.status, checks: ((await res.json()) as { checks: Record<string, string> }).checks };
}

describe('worker processes', () => {
  let origin: Origin;
  let h: ProxyHarness;
  before(async () => {
    origin = await startOrigin();
    h = await startProxyHarness({ policy: POLICY, env: { MOAT_PROXY_WORKERS: '2' } });
    await waitFor('both workers ready', async () => (await readiness(h)).status === 200, {
      proc: h.proc,
      timeoutMs: 20_000,
    });
  });
  after(async () => {
    await h?.stop();
    await origin?.close();
  });

  test('workers - both serve the port, and the supervisor sums their metrics', async () => {
    const { checks } = await readiness(h);
    assert.deepEqual(checks, { 'worker-1': 'ok', 'worker-2': 'ok' });
    const requests = 40;
    for (let i = 0; i < requests; i++) {
      // a new connection each time: the kernel spreads connections over the workers' sockets
      const reply = await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/`);
      assert.equal(reply.status, 200);
    }
    await waitFor('events of every request', async () => h.events.length >= requests, { timeoutMs: 5000 });
    const instances = new Set(h.events.map((e) => e.instance));
    assert.equal(instances.size, 2, `both workers handled requests (events came from ${[...instances]})`);
    const served = await metric(h, /^moat_proxy_requests_total\{[^}]*verdict="allow"[^}]*\} (\d+)/m);
    assert.equal(served, requests, 'the metrics of both workers are summed');
    assert.equal(await metric(h, /^moat_proxy_workers\{[^}]*state="ready"[^}]*\} (\d+)/m), 2);
    assert.equal(
      await metric(h, /^moat_policy_applied_version\{[^}]*\} (\d+)/m),
      1,
      'the policy version is not summed over workers',
    );
  });

  test('workers - a worker that dies is replaced while the other keeps serving', async () => {
    const [victim, survivor] = childrenOf(h.proc.child.pid as number);
    assert.ok(victim && survivor, 'the supervisor has two worker processes');
    process.kill(victim, 'SIGKILL');
    // (connections the kernel queued on the dying worker's socket are reset with it: a crash costs those)
    await waitFor('the killed worker to be gone', async () => !alive(victim), { timeoutMs: 5000 });
    // its socket left the port's group: every new connection reaches the survivor
    for (let i = 0; i < 10; i++) {
      assert.equal((await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/`)).status, 200);
    }
    await waitFor(
      'a replacement worker',
      async () =>
        (await metric(h, /^moat_proxy_worker_restarts_total\{[^}]*\} (\d+)/m)) === 1 &&
        (await readiness(h)).status === 200,
      { proc: h.proc, timeoutMs: 15_000 },
    );
    const now = childrenOf(h.proc.child.pid as number);
    assert.equal(now.length, 2);
    assert.ok(now.includes(survivor) && !now.includes(victim));
  });

  test('workers - SIGTERM stops the supervisor and every worker', async () => {
    const workers = childrenOf(h.proc.child.pid as number);
    await h.proc.stop(15_000);
    assert.equal(h.proc.child.signalCode, null, 'the supervisor exited by itself, not killed');
    assert.equal(h.proc.child.exitCode, 0);
    for (const pid of workers) assert.ok(!alive(pid), `worker ${pid} is gone`);
  });
});

describe('worker processes - configuration', () => {
  test('workers - a port the workers cannot share is refused at start, saying why', async () => {
    const main = fileURLToPath(new URL('./main.js', import.meta.url));
    const result = await runCommand(process.execPath, [main], {
      env: { ...process.env, MOAT_PROXY_WORKERS: '2', MOAT_PROXY_PORT: '0' },
      timeoutMs: 20_000,
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /MOAT_PROXY_WORKERS > 1 needs a fixed MOAT_PROXY_PORT/);
  });
});
