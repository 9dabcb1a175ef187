import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCommand } from '@moat/testkit';
import { repoRoot } from '../paths.js';
import { isRunning } from '../proc.js';
import { findOnPath } from '../run.js';
import { MOAT_WITH_FAKE_BIN, runMoat } from '../testing/cli-process.js';
import { ETC_NETNS, labHostsFile } from './hosts.js';
import type { LabStatus } from './lab.js';
import { otelCollectorBinary } from './processes.js';
import { LAB_CA_CERT, LAB_STATE_DIR } from './state.js';
import { LAB_ADDRESSES, LAB_HOSTNAMES, LAB_NAMESPACES } from './topology.js';

/**
 * Builds the real lab (namespaces, veths, NATS, Redis, origin, a service) through
 * the `moat` binary. Needs root; refuses to run over a lab someone already has up.
 */

const LAB_NS = Object.values(LAB_NAMESPACES) as string[];
const labNamespacesPresent = () =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((name) => LAB_NS.includes(name));
const hostLinks = () =>
  execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((l) => l.split(':')[1]?.trim())
    .sort();

function skipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: the lab needs network namespaces (run the tests with sudo)';
  const missing = ['ip', 'curl', 'openssl', 'nft', 'getent', 'nats-server', 'redis-server'].filter(
    (tool) => !findOnPath(tool),
  );
  if (missing.length > 0) return `missing tools: ${missing.join(', ')}`;
  if (labNamespacesPresent().length > 0)
    return 'a lab is already up (run `moat lab down` first); not touching it';
  return undefined;
}

const reason = skipReason();
/** The lab runs its trace receiver when the collector is built (scripts/setup.sh does). */
const tracing = existsSync(otelCollectorBinary());
if (reason) console.error(`\n!!!!!!!! SKIPPING LAB TESTS: ${reason} !!!!!!!!\n`);

const moat = (args: string[]) => runMoat(args, { bin: MOAT_WITH_FAKE_BIN });
/** curl run inside a lab namespace through `moat lab exec` (5 s limit). */
const curlIn = (ns: 'lan' | 'gw', url: string, ...flags: string[]) =>
  moat(['lab', 'exec', ns, '--', 'curl', '-sS', '-m', '5', ...flags, url]);
async function status(): Promise<LabStatus> {
  const result = await moat(['lab', 'status', '--json']);
  return JSON.parse(result.stdout) as LabStatus;
}

describe('lab', { skip: reason }, () => {
  let linksBefore: string[] = [];
  let etcNetnsBefore = false;
  before(() => {
    linksBefore = hostLinks();
    etcNetnsBefore = existsSync(ETC_NETNS);
  });
  after(async () => {
    // Whatever happened above, leave nothing behind.
    if (labNamespacesPresent().length > 0 || existsSync(LAB_STATE_DIR)) await moat(['lab', 'down']);
  });

  test('lab - up builds the topology, starts everything and the LAN reaches the origin through the gateway', async () => {
    const result = await moat(['lab', 'up', '--services', 'fake']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /moat-lan \(10\.70\.1\.10\) reaches origin/);
    assert.deepEqual(labNamespacesPresent().sort(), [...LAB_NS].sort());
  });

  let pidsAfterFirstUp: Record<string, number> = {};
  test('lab - status reports namespaces, gateway interfaces and ready processes (--json)', async () => {
    const s = await status();
    assert.equal(s.up, true);
    assert.ok(s.namespaces.every((n) => n.exists));
    const gw = s.namespaces.find((n) => n.name === 'moat-gw');
    const addressesOf = (name: string) => gw?.interfaces.find((i) => i.name === name)?.addresses ?? [];
    assert.ok(addressesOf('lan0').includes(`${LAB_ADDRESSES.gwLan}/24`));
    assert.ok(addressesOf('wan0').includes(`${LAB_ADDRESSES.gwWan}/24`));
    assert.deepEqual(
      s.processes.map((p) => [p.name, p.namespace, p.running, p.ready]),
      [
        ['nats', 'moat-gw', true, true],
        ['redis', 'moat-gw', true, true],
        ['origin', 'moat-wan', true, true],
        ['bad-tls', 'moat-wan', true, true],
        ...(tracing ? [['otelcol', 'moat-gw', true, true]] : []),
        ['fake', 'moat-gw', true, true],
      ],
    );
    pidsAfterFirstUp = Object.fromEntries(s.processes.map((p) => [p.name, p.pid]));
  });

  test('lab - up twice is harmless: nothing is duplicated or restarted', async () => {
    const result = await moat(['lab', 'up', '--services', 'fake']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /network ready \(already in place\)/);
    assert.match(result.stdout, /lab CA and origin certificate already in place/);
    const s = await status();
    assert.deepEqual(Object.fromEntries(s.processes.map((p) => [p.name, p.pid])), pidsAfterFirstUp);
    const natsServers = execFileSync('ip', ['netns', 'pids', 'moat-gw'], { encoding: 'utf8' })
      .trim()
      .split(/\s+/);
    const expected = tracing ? 'nats, redis, otelcol, fake' : 'nats, redis, fake';
    assert.equal(natsServers.length, tracing ? 4 : 3, `moat-gw should hold ${expected} only: ${natsServers}`);
  });

  test('lab - curl from moat-lan reaches the origin through moat-gw, without NAT', async () => {
    const page = await curlIn('lan', `http://${LAB_ADDRESSES.origin}/`);
    assert.equal(page.code, 0, page.stderr);
    assert.match(page.stdout, /Moat lab origin/);
    const echo = await curlIn('lan', `http://${LAB_ADDRESSES.origin}/echo`);
    assert.equal(
      (JSON.parse(echo.stdout) as { remoteAddress: string }).remoteAddress,
      LAB_ADDRESSES.lanClient,
    );
    const bytes = await curlIn(
      'lan',
      `http://${LAB_ADDRESSES.wanGw}/bytes/12345`,
      '-o',
      '/dev/null',
      '-w',
      '%{size_download}',
    );
    assert.equal(bytes.stdout, '12345');
    const route = await moat(['lab', 'exec', 'gw', '--', 'ip', 'route', 'get', LAB_ADDRESSES.origin]);
    assert.match(route.stdout, /via 203\.0\.113\.2 dev wan0/);
  });

  test('lab - lab names resolve to the origin in moat-lan, moat-gw and moat-remote, not on the host', async () => {
    for (const ns of ['lan', 'gw', 'remote']) {
      for (const name of ['casino.test', 'www.pinned.test']) {
        const v4 = await moat(['lab', 'exec', ns, '--', 'getent', 'ahostsv4', name]);
        assert.equal(v4.code, 0, `${name} in ${ns}: ${v4.stderr}`);
        assert.match(v4.stdout, new RegExp(`^${LAB_ADDRESSES.origin.replaceAll('.', '\\.')}\\s`));
      }
    }
    const onHost = await runCommand('getent', ['hosts', 'casino.test']);
    assert.notEqual(onHost.code, 0, 'the host itself must not learn lab names');
  });

  test('lab - the origin serves HTTPS for every lab name with a certificate from the lab CA', async () => {
    for (const name of LAB_HOSTNAMES) {
      const echo = await curlIn('lan', `https://${name}/echo`, '--cacert', LAB_CA_CERT);
      assert.equal(echo.code, 0, `${name}: ${echo.stderr}`);
      const body = JSON.parse(echo.stdout) as { tls?: { servername: string; alpnProtocol: string } };
      assert.equal(body.tls?.servername, name);
      assert.equal(body.tls?.alpnProtocol, 'http/1.1');
    }
    const byAddress = await curlIn('lan', `https://${LAB_ADDRESSES.origin}/healthz`, '--cacert', LAB_CA_CERT);
    assert.equal(byAddress.stdout, 'ok\n', byAddress.stderr);
    // Real validation: without the lab CA, curl refuses the certificate (exit 60).
    const untrusted = await curlIn('lan', 'https://origin.test/healthz');
    assert.equal(untrusted.code, 60, untrusted.stderr);
  });

  test('lab - services get the lab environment (NATS/Redis in moat-gw, host-visible socket dir)', async () => {
    const env = await curlIn('gw', 'http://127.0.0.1:9499/env');
    assert.deepEqual(JSON.parse(env.stdout), {
      MOAT_FAKE_HTTP_PORT: '9499',
      MOAT_NATS_URL: 'nats://127.0.0.1:4222',
      MOAT_REDIS_URL: 'redis://127.0.0.1:6379',
      MOAT_FAKE_EXPECTED_SERVICES: 'fake',
      MOAT_LOG_LEVEL: 'info',
      MOAT_FAKE_SOCKET_DIR: LAB_STATE_DIR,
    });
  });

  test('lab - up repairs a missing veth and restarts a dead process', async () => {
    execFileSync('ip', ['-n', 'moat-gw', 'link', 'delete', 'dev', 'wan0']);
    const redisPid = pidsAfterFirstUp.redis;
    // never `process.kill(0)`: that would kill this test runner's whole process group
    assert.ok(redisPid, 'the status test recorded the pid of redis');
    process.kill(redisPid, 'SIGKILL');
    const partly = await moat(['lab', 'status']);
    assert.equal(partly.code, 1);
    const result = await moat(['lab', 'up', '--services', 'fake']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /created moat-gw\/wan0↔moat-wan\/gw0/);
    const s = await status();
    assert.equal(s.up, true);
    assert.notEqual(s.processes.find((p) => p.name === 'redis')?.pid, pidsAfterFirstUp.redis);
    pidsAfterFirstUp = Object.fromEntries(s.processes.map((p) => [p.name, p.pid]));
  });

  test('lab - down leaves no namespace, veth, process or state behind, and is idempotent', async () => {
    const result = await moat(['lab', 'down']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.deepEqual(labNamespacesPresent(), []);
    assert.equal(existsSync(LAB_STATE_DIR), false);
    for (const [name, pid] of Object.entries(pidsAfterFirstUp))
      assert.equal(isRunning(pid), false, `${name} (pid ${pid})`);
    assert.deepEqual(hostLinks(), linksBefore, 'host links changed');
    for (const ns of LAB_NS as (typeof LAB_NAMESPACES)[keyof typeof LAB_NAMESPACES][])
      assert.equal(existsSync(labHostsFile(ns)), false, `${labHostsFile(ns)} removed`);
    assert.equal(existsSync(ETC_NETNS), etcNetnsBefore, `${ETC_NETNS} left as it was before the lab`);
    const again = await moat(['lab', 'down']);
    assert.equal(again.code, 0);
    const s = await moat(['lab', 'status', '--json']);
    assert.equal(s.code, 3);
    assert.equal((JSON.parse(s.stdout) as LabStatus).up, false);
  });

  test('lab - runs the real control service when it is built', async (t) => {
    if (!existsSync(join(repoRoot(), 'services/control/dist/main.js'))) {
      console.error(
        '\n!!!!!!!! SKIPPED: services/control/dist/main.js is not built — lab with control untested !!!!!!!!\n',
      );
      return t.skip('services/control is not built yet (run `npm run build`)');
    }
    const result = await moat(['lab', 'up', '--services', 'control']);
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.ok(existsSync(join(LAB_STATE_DIR, 'control.sock')), 'control.sock for moatctl on the host');
    const s = await status();
    assert.equal(s.processes.find((p) => p.name === 'control')?.ready, true);
    const down = await moat(['lab', 'down']);
    assert.equal(down.code, 0);
    assert.deepEqual(labNamespacesPresent(), []);
  });
});
