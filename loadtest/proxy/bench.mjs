#!/usr/bin/env node
// Moat's web proxy vs Squid, side by side in the same run: small responses, large responses, CONNECT
// tunnels and idle keep-alive memory, interleaving the two proxies round by round. See README.md.
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { httpGet } from './lib/http.mjs';
import { cpuMs, idleRun, tunnelRun, wrkRun } from './lib/load.mjs';
import {
  cleanup,
  installCleanupHandlers,
  isInterrupted,
  keepTempDirs,
  log,
  makeTempDir,
  run,
} from './lib/procs.mjs';
import { markdownTable, resultsPath, scanAccessLog, summarise } from './lib/report.mjs';
import { ONE_KIB, ONE_MIB, startMoat, startNodeFloor, startOrigin, startSquid } from './lib/stacks.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const TESTS = ['small', 'large', 'connect', 'idle'];
const MAX_ERROR_RATE = 0.001;

const USAGE = `Usage: node loadtest/proxy/bench.mjs [options]

Moat's proxy vs Squid on loopback, interleaved round by round (A B, B A, ...), medians and ratios.
Starts its own nginx origin, Squid, and Moat (nats-server, redis-server, services/proxy/dist/main.js),
and stops them all on exit, Ctrl-C or error.

  --rounds N              rounds per test (default 3)
  --duration S            seconds per measured wrk run (default 10)
  --warmup S              seconds of wrk warm-up before each measured run (default 2)
  --only LIST             tests to run: ${TESTS.join(',')} (default all)
  --stacks A,B            candidate,baseline from moat, squid, node-floor (default moat,squid;
                          squid,squid checks the harness; node-floor is a bare Node forwarder, see README)
  --squid-workers N       Squid SMP workers (default 1, as shipped); compare with --moat-env MOAT_PROXY_WORKERS=N
  --connections N         connections for 1 KiB responses (default 50)
  --large-connections N   connections for 1 MiB responses (default 8)
  --threads N             wrk threads (default 2)
  --connect-size SIZE     bytes pulled through CONNECT tunnels per run, e.g. 1g, 512m (default 1g)
  --connect-streams LIST  parallel tunnels, e.g. 1,4 (default 1,4)
  --idle-connections N    idle keep-alive connections for the memory test (default 1000)
  --moat-env K=V          extra environment for Moat's proxy (repeatable)
  --repo DIR              Moat checkout to run the proxy from (default: this one)
  --out FILE              results file (default loadtest/results/proxy-<date>.json)
  --json                  print the results JSON on stdout instead of the markdown table
  --keep-temp             keep the temp dir (configs, logs, access logs) for inspection
  -h, --help              this text
`;

class UsageError extends Error {}

function parseSize(s) {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]i?b?)?$/i.exec(String(s).trim());
  if (!m) throw new UsageError(`bad size: ${s}`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  return Math.round(Number(m[1]) * ({ k: 2 ** 10, m: 2 ** 20, g: 2 ** 30 }[unit] ?? 1));
}

function positiveInt(name, v) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a positive integer, not ${v}`);
  return n;
}

function nonNegative(name, v) {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new UsageError(`--${name} must be a number of seconds, not ${v}`);
  return n;
}

function options() {
  try {
    return readOptions();
  } catch (err) {
    throw err instanceof UsageError ? err : new UsageError(err.message);
  }
}

function readOptions() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '2' },
      only: { type: 'string', default: TESTS.join(',') },
      stacks: { type: 'string', default: 'moat,squid' },
      'squid-workers': { type: 'string', default: '1' },
      connections: { type: 'string', default: '50' },
      'large-connections': { type: 'string', default: '8' },
      threads: { type: 'string', default: '2' },
      'connect-size': { type: 'string', default: '1g' },
      'connect-streams': { type: 'string', default: '1,4' },
      'idle-connections': { type: 'string', default: '1000' },
      'moat-env': { type: 'string', multiple: true, default: [] },
      repo: { type: 'string', default: resolve(here, '../..') },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      'keep-temp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const only = values.only.split(',').map((s) => s.trim());
  for (const t of only)
    if (!TESTS.includes(t)) throw new UsageError(`--only: unknown test ${t} (${TESTS.join(', ')})`);
  const stacks = values.stacks.split(',').map((s) => s.trim());
  if (stacks.length !== 2 || stacks.some((s) => !['moat', 'squid', 'node-floor'].includes(s)))
    throw new UsageError(
      '--stacks takes two of moat, squid, node-floor, e.g. moat,squid, squid,squid or node-floor,squid',
    );
  const moatEnv = {};
  for (const kv of values['moat-env']) {
    const i = kv.indexOf('=');
    if (i < 1) throw new UsageError(`--moat-env wants K=V, not ${kv}`);
    moatEnv[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return {
    rounds: positiveInt('rounds', values.rounds),
    durationS: positiveInt('duration', values.duration),
    warmupS: nonNegative('warmup', values.warmup),
    only,
    stacks,
    squidWorkers: positiveInt('squid-workers', values['squid-workers']),
    connections: positiveInt('connections', values.connections),
    largeConnections: positiveInt('large-connections', values['large-connections']),
    threads: positiveInt('threads', values.threads),
    connectBytes: parseSize(values['connect-size']),
    connectStreams: values['connect-streams'].split(',').map((s) => positiveInt('connect-streams', s)),
    idleConnections: positiveInt('idle-connections', values['idle-connections']),
    moatEnv,
    repo: resolve(values.repo),
    out: values.out,
    json: values.json,
    keepTemp: values['keep-temp'],
  };
}

async function toolVersions() {
  const first = async (cmd, args) => {
    try {
      const r = await run(cmd, args);
      return `${r.stdout}${r.stderr}`.trim().split('\n')[0];
    } catch (err) {
      return `unavailable (${err.message})`;
    }
  };
  return {
    node: process.version,
    wrk: await first('wrk', ['-v']),
    curl: await first('curl', ['--version']),
    nginx: await first('/usr/sbin/nginx', ['-v']),
    squid: await first('/usr/sbin/squid', ['-v']),
    natsServer: await first('nats-server', ['--version']),
    redisServer: await first('redis-server', ['--version']),
  };
}

const fmt = (x, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });

function checkWrk(what, r, expectBytes) {
  if (r.errorRate > MAX_ERROR_RATE)
    throw new Error(
      `${what}: ${r.errors.total} errors in ${r.requests} requests (${(r.errorRate * 100).toFixed(2)}% > ${
        MAX_ERROR_RATE * 100
      }%): ${JSON.stringify(r.errors)}`,
    );
  if (r.requests === 0) throw new Error(`${what}: no requests completed`);
  // Body plus a response head (and the partial responses in flight when wrk stops): anything else
  // (block pages, error pages) means something is wrong.
  const slack = 2048 + (r.connections * (expectBytes + 2048)) / r.requests;
  if (r.bytesPerRequest < expectBytes || r.bytesPerRequest > expectBytes + slack)
    throw new Error(
      `${what}: ${fmt(r.bytesPerRequest)} bytes per response, expected ${expectBytes} + headers`,
    );
}

async function main() {
  const opts = options();
  installCleanupHandlers();
  if (opts.keepTemp) keepTempDirs();
  const [candidate, baseline] =
    opts.stacks[0] === opts.stacks[1] ? [opts.stacks[0], `${opts.stacks[1]}-b`] : opts.stacks;
  const titles = {
    moat: 'Moat',
    squid: 'Squid',
    'squid-b': 'Squid B',
    'moat-b': 'Moat B',
    'node-floor': 'Node floor',
    'node-floor-b': 'Node floor B',
    origin: 'origin',
  };
  const tmp = makeTempDir();
  log(
    `temp dir ${tmp}; ${os.cpus().length} CPUs, load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}`,
  );
  const started = new Date();
  const loadAverageAtStart = os.loadavg();
  const connectSizes = [...new Set(opts.connectStreams.map((n) => Math.floor(opts.connectBytes / n)))];
  const origin = await startOrigin(tmp, { tunnelSizes: [...connectSizes, 64 * ONE_MIB] });
  log(`origin nginx on 127.0.0.1:${origin.port}`);

  const stacks = {};
  const startStack = async (name) => {
    const kind = name.replace(/-b$/, '');
    if (kind === 'squid') return startSquid(tmp, name, { workers: opts.squidWorkers });
    if (kind === 'node-floor') return startNodeFloor(tmp, name);
    const main = join(opts.repo, 'services/proxy/dist/main.js');
    if (!existsSync(main))
      throw new Error(`${main} not found: build the proxy (npx tsc -p services/proxy/tsconfig.json) first`);
    return startMoat(tmp, {
      repo: opts.repo,
      policyFile: join(here, 'bench-policy.yaml'),
      extraEnv: opts.moatEnv,
      name,
    });
  };
  const expectedNon200 = {};
  for (const name of [baseline, candidate]) {
    stacks[name] = await startStack(name);
    expectedNon200[name] = 0;
    const s = stacks[name];
    log(`${name}: ${s.version}, proxy port ${s.port}, pid ${s.pid}`);
    const res = await httpGet({
      port: s.port,
      path: `http://127.0.0.1:${origin.port}/1k`,
      host: `127.0.0.1:${origin.port}`,
    });
    if (res.status !== 200 || res.body.length !== ONE_KIB)
      throw new Error(`${name}: GET /1k through the proxy gave ${res.status}, ${res.body.length} bytes`);
  }
  // Moat must really filter: the inline category's domain gets a block page.
  const filtering = {};
  for (const name of [candidate, baseline].filter((n) => stacks[n].kind === 'moat')) {
    const res = await httpGet({
      port: stacks[name].port,
      path: 'http://blocked.bench.test/',
      host: 'blocked.bench.test',
    });
    expectedNon200[name]++;
    filtering[name] = res.status;
    if (res.status !== 403)
      log(`WARNING ${name}: blocked.bench.test answered ${res.status}, not 403: is URL filtering on?`);
    else log(`${name}: URL filtering active (blocked.bench.test → 403)`);
  }

  const runs = [];
  const record = (round, test, variant, stack, result) => {
    runs.push({ round, test, variant, stack, loadAverage1m: os.loadavg()[0], result });
  };
  // CPU the proxy (and, for Moat, NATS + Redis) used during `fn`: robust against a busy machine
  // in a way throughput is not.
  const withCpu = async (name, fn) => {
    const s = stacks[name];
    if (!s) return { result: await fn() };
    const pids = s.supportPids();
    const p0 = cpuMs(s.pid);
    const s0 = pids.map(cpuMs);
    const result = await fn();
    return {
      result,
      proxyCpuMs: cpuMs(s.pid) - p0,
      supportCpuMs: pids.map(cpuMs).reduce((a, v, i) => a + v - s0[i], 0),
    };
  };
  const proxyPortOf = (name) => (name === 'origin' ? null : stacks[name].port);
  const wrk = (name, path, connections, durationS) =>
    wrkRun({
      dir: tmp,
      proxyPort: proxyPortOf(name),
      originPort: origin.port,
      path,
      connections,
      threads: opts.threads,
      durationS,
    });
  const measureWrk = async (round, test, name, path, connections, expectBytes) => {
    if (opts.warmupS > 0) await wrk(name, path, connections, opts.warmupS);
    const {
      result: r,
      proxyCpuMs,
      supportCpuMs,
    } = await withCpu(name, () => wrk(name, path, connections, opts.durationS));
    checkWrk(`${test} ${name} round ${round}`, r, expectBytes);
    if (proxyCpuMs !== undefined) {
      r.proxyCpuMs = proxyCpuMs;
      r.supportCpuMs = supportCpuMs;
      r.proxyCpuUsPerRequest = (proxyCpuMs * 1000) / r.requests;
      r.supportCpuUsPerRequest = (supportCpuMs * 1000) / r.requests;
      r.proxyCpuMsPerMiB = proxyCpuMs / (r.bytes / ONE_MIB);
    }
    record(round, test, `${connections}c`, name, r);
    return r;
  };

  for (let round = 1; round <= opts.rounds; round++) {
    // A B in odd rounds, B A in even ones, so neither proxy always goes first.
    const order = round % 2 ? [candidate, baseline] : [baseline, candidate];
    const tag = `[round ${round}/${opts.rounds}]`;
    if (opts.only.includes('small')) {
      for (const name of ['origin', ...order]) {
        const r = await measureWrk(round, 'small', name, '/1k', opts.connections, ONE_KIB);
        log(
          `${tag} 1 KiB ${name.padEnd(7)} ${fmt(r.reqPerSec).padStart(7)} req/s  p50 ${fmt(r.latencyMs.p50, 2)} ms  p99 ${fmt(
            r.latencyMs.p99,
            2,
          )} ms  errors ${r.errors.total}`,
        );
      }
    }
    if (opts.only.includes('large')) {
      for (const name of order) {
        const r = await measureWrk(round, 'large', name, '/1m', opts.largeConnections, ONE_MIB);
        log(
          `${tag} 1 MiB ${name.padEnd(7)} ${fmt(r.mibPerSec).padStart(7)} MiB/s  p99 ${fmt(r.latencyMs.p99, 1)} ms`,
        );
      }
    }
    if (opts.only.includes('connect')) {
      for (const streams of opts.connectStreams) {
        for (const name of ['origin', ...order]) {
          // A short pull first, so the first tunnel of a round does not pay for cold caches.
          await tunnelRun({
            proxyPort: proxyPortOf(name),
            originPort: origin.port,
            totalBytes: 64 * ONE_MIB,
            streams: 1,
          });
          const { result: r, proxyCpuMs } = await withCpu(name, () =>
            tunnelRun({
              proxyPort: proxyPortOf(name),
              originPort: origin.port,
              totalBytes: opts.connectBytes,
              streams,
            }),
          );
          if (proxyCpuMs !== undefined) r.proxyCpuMsPerMiB = proxyCpuMs / (r.bytes / ONE_MIB);
          record(round, 'connect', `${streams}s`, name, r);
          log(
            `${tag} CONNECT ×${streams} ${name.padEnd(7)} ${fmt(r.mibPerSec).padStart(6)} MiB/s (${fmt(r.seconds, 2)} s)`,
          );
        }
      }
    }
    if (opts.only.includes('idle')) {
      for (const name of order) {
        // A fresh process each round (freed memory is reused, so a second batch would look free),
        // warmed up briefly so the baseline includes what serving traffic costs anyway.
        const s = stacks[name];
        await s.restart();
        await wrk(name, '/1k', opts.connections, Math.max(1, opts.warmupS));
        await sleep(1000);
        const r = await idleRun({
          proxyPort: s.port,
          originPort: origin.port,
          pid: s.pid,
          count: opts.idleConnections,
        });
        record(round, 'idle', `${opts.idleConnections}`, name, r);
        log(
          `${tag} idle ${name.padEnd(7)} RSS ${fmt(r.rssBeforeKiB / 1024, 1)} → ${fmt(r.rssAfterKiB / 1024, 1)} MiB: ${fmt(
            r.kibPerConnection,
            2,
          )} KiB/conn; held open ${r.heldOpenByProxy}/${r.connections}, closed early ${r.closedEarly}, non-200 ${r.non200}`,
        );
        if (r.non200 > 0 || r.closedEarly > 0 || r.heldOpenByProxy < r.connections)
          log(`WARNING ${name}: not every idle connection stayed open with a 200; see the JSON`);
      }
    }
  }

  const metrics = [
    {
      test: 'small',
      variant: `${opts.connections}c`,
      key: 'small.reqPerSec',
      label: `1 KiB, ${opts.connections} conns`,
      unit: 'req/s',
      better: 'higher',
      value: (r) => r.result.reqPerSec,
    },
    {
      test: 'small',
      variant: `${opts.connections}c`,
      key: 'small.p50',
      label: '1 KiB latency p50',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.result.latencyMs.p50,
    },
    {
      test: 'small',
      variant: `${opts.connections}c`,
      key: 'small.p99',
      label: '1 KiB latency p99',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.result.latencyMs.p99,
    },
    {
      test: 'small',
      variant: `${opts.connections}c`,
      key: 'small.proxyCpuUsPerRequest',
      label: '1 KiB CPU per request, proxy process',
      unit: 'µs',
      better: 'lower',
      value: (r) => r.result.proxyCpuUsPerRequest,
    },
    {
      test: 'small',
      variant: `${opts.connections}c`,
      key: 'small.supportCpuUsPerRequest',
      label: '1 KiB CPU per request, NATS + Redis',
      unit: 'µs',
      better: 'lower',
      value: (r) => r.result.supportCpuUsPerRequest,
    },
    {
      test: 'large',
      variant: `${opts.largeConnections}c`,
      key: 'large.mibPerSec',
      label: `1 MiB, ${opts.largeConnections} conns`,
      unit: 'MiB/s',
      better: 'higher',
      value: (r) => r.result.mibPerSec,
    },
    {
      test: 'large',
      variant: `${opts.largeConnections}c`,
      key: 'large.proxyCpuMsPerMiB',
      label: '1 MiB CPU per MiB, proxy process',
      unit: 'ms',
      better: 'lower',
      value: (r) => r.result.proxyCpuMsPerMiB,
    },
    ...opts.connectStreams.map((n) => ({
      test: 'connect',
      variant: `${n}s`,
      key: `connect.${n}.mibPerSec`,
      label: `CONNECT tunnel, ${n} stream${n > 1 ? 's' : ''}`,
      unit: 'MiB/s',
      better: 'higher',
      value: (r) => r.result.mibPerSec,
    })),
    ...opts.connectStreams.map((n) => ({
      test: 'connect',
      variant: `${n}s`,
      key: `connect.${n}.proxyCpuMsPerMiB`,
      label: `CONNECT CPU per MiB, ${n} stream${n > 1 ? 's' : ''}, proxy process`,
      unit: 'ms',
      better: 'lower',
      value: (r) => r.result.proxyCpuMsPerMiB,
    })),
    {
      test: 'idle',
      variant: `${opts.idleConnections}`,
      key: 'idle.kibPerConnection',
      label: `idle keep-alive memory (${opts.idleConnections} conns)`,
      unit: 'KiB/conn',
      better: 'lower',
      value: (r) => r.result.kibPerConnection,
    },
    {
      test: 'idle',
      variant: `${opts.idleConnections}`,
      key: 'idle.rssBaselineMiB',
      label: `proxy RSS after a ${Math.max(1, opts.warmupS)} s warm-up, no connections`,
      unit: 'MiB',
      better: 'lower',
      value: (r) => r.result.rssBeforeKiB / 1024,
    },
  ];
  const rows = summarise(runs, metrics, { candidate, baseline });

  // Every response in the runs should have been a 200: the proxies' own access logs say so too.
  const accessLogs = {};
  for (const name of [candidate, baseline]) {
    const s = stacks[name];
    if (!s.accessLog) continue; // node-floor keeps no log
    const scan = await scanAccessLog(s.accessLog, s.accessLogFormat);
    const bad = scan.entries - scan.ok - scan.aborted - scan.unparsed - expectedNon200[name];
    accessLogs[name] = { ...scan, unexpectedNon200: bad };
    log(
      `${name} access log: ${fmt(scan.entries)} entries, ${fmt(scan.ok)} × 200, ${scan.aborted} aborted by the client (wrk stopping), ${bad} unexpected; ${JSON.stringify(scan.byStatus)}${scan.unparsed ? `, ${scan.unparsed} unparsed` : ''}`,
    );
  }

  const results = {
    benchmark: 'proxy',
    started: started.toISOString(),
    finished: new Date().toISOString(),
    candidate,
    baseline,
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      kernel: os.release(),
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg(),
    },
    versions: {
      ...(await toolVersions()),
      ...Object.fromEntries(Object.entries(stacks).map(([k, s]) => [k, s.version])),
    },
    config: { ...opts, moatProxyEnv: Object.values(stacks).find((s) => s.kind === 'moat')?.env },
    moatUrlFilteringCheck: filtering,
    summary: rows,
    accessLogs,
    runs,
  };
  const file = resultsPath(opts.out, 'proxy');
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  log(`results written to ${file}`);
  if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else process.stdout.write(`\n${markdownTable(rows, { candidate, baseline, titles })}\n`);

  for (const [name, a] of Object.entries(accessLogs)) {
    if (a.entries > 0 && a.unexpectedNon200 / a.entries > MAX_ERROR_RATE)
      throw new Error(
        `${name}: ${a.unexpectedNon200} non-200 entries in its access log (${JSON.stringify(a.byStatus)})`,
      );
  }
  if (opts.keepTemp) log(`keeping ${tmp} (--keep-temp)`);
}

try {
  await main();
} catch (err) {
  if (err instanceof UsageError) {
    process.stderr.write(`bench.mjs: ${err.message}\n(see --help)\n`);
    process.exitCode = 2;
  } else {
    if (!isInterrupted()) log(`FAILED: ${err.stack ?? err}`);
    process.exitCode = 1;
  }
} finally {
  await cleanup();
}
