#!/usr/bin/env node
// loadtest/av — gateway antivirus: Moat (proxy → NATS JetStream → av-scanner workers → clamd, verdict
// cache in Redis) vs Squid → ICAP → c-icap (virus_scan, clamd_mod) → clamd, same signature database,
// same origin, same run: MiB/s for unique 1 MiB and 10 MiB files, latency added to small responses,
// MiB/s for a repeated file, CPU per MiB; Moat with 1, 2 and 4 workers. See README.md.
// A benchmark, not a test: run it by hand, never in CI.
import { randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  installCleanupHandlers,
  keepTempDirs,
  log,
  makeTempDir,
  rerunInNetns,
  runMain,
} from '../proxy/lib/procs.mjs';
import { median, resultsPath, runIdentity } from '../proxy/lib/report.mjs';
import { startMoat, startOrigin, startSquid } from '../proxy/lib/stacks.mjs';
import { clamdCommand, EICAR, startIcapStack } from './lib/icap-stack.mjs';
import {
  cell,
  cpuDelta,
  cpuOf,
  curlMany,
  fetchOne,
  fmt,
  KiB,
  MiB,
  percentile,
  ratio,
  sha256,
  stat,
  throughput,
  writeFiles,
} from './lib/measure.mjs';
import { startBenchClamd, startMoatAv } from './lib/moat-av.mjs';

const REPO = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const HERE = join(REPO, 'loadtest/av');

const HELP = `Usage: node loadtest/av/bench.mjs [options]   (as root it runs in a network namespace of its own)

Gateway antivirus, Moat vs Squid + c-icap + ClamAV, side by side against one nginx origin, with the
same test signature database (@moat/clamav writeTestSignatures) and the same clamd configuration
(DisableCache yes) on both sides. Reports medians over the rounds and Moat/Squid ratios.

  --rounds N            rounds; each Moat worker count is paired with a Squid measurement, who goes
                        first alternates, and the order flips each round (default 3)
  --parallel N          parallel transfers of the load client, curl --parallel (default 8)
  --files-1m N          distinct random 1 MiB files, each fetched once per measurement (default 200)
  --files-10m N         distinct random 10 MiB files, each fetched once per measurement (default 40)
  --repeat-1m N         fetches of one fixed 1 MiB file for the repeated-file test (default 200)
  --latency-samples N   sequential 1 KiB GETs per latency measurement, each a distinct file (default 200)
  --workers LIST        Moat av-scanner worker counts to measure unique files with (default 1,2,4)
  --main-workers N      Moat's worker count for the latency and repeated-file tests (default 2)
  --concurrency N       scans at once per av-scanner worker, MOAT_AV_SCANNER_CONCURRENCY (default 2)
  --clamd-threads N     clamd MaxThreads, the same on both sides (default max(workers) x concurrency)
  --nats-native-sha256  experiment: preload lib/native-sha256.mjs into Moat's proxy and workers, so the
                        NATS object store hashes with node:crypto instead of its pure-JS default
  --moat-node-options=S NODE_OPTIONS for Moat's proxy and workers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
  --no-breakdown        skip the single-request breakdown of where Moat's time goes
  --quick               a short smoke: 1 round, 40 x 1 MiB, 8 x 10 MiB, 40 repeats, 50 latency samples
  --report FILE         print the markdown tables of a saved results file, measure nothing
  --out FILE            results file (default loadtest/results/av-<date>.json)
  --json                print the whole result as JSON instead of the markdown tables
  --keep-temp           keep the temp dir (configs, logs, files) for inspection
  -h, --help            this text

Every measurement checks every response (200 and the file's size) and fails the run otherwise.
Before measuring, both antivirus stacks must block EICAR (403), deliver a clean 10 MiB file with
its sha256 intact, and not deliver EICAR hidden at the end of 1 MiB; the no-antivirus references
must deliver EICAR (proof that they really do not scan).
Needs nginx, squid, c-icap + libc-icap-mod-virus-scan, clamav-daemon, nats-server, redis-server,
curl; services built (npx turbo run build).`;

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      parallel: { type: 'string', default: '8' },
      'files-1m': { type: 'string' },
      'files-10m': { type: 'string' },
      'repeat-1m': { type: 'string' },
      'latency-samples': { type: 'string' },
      workers: { type: 'string', default: '1,2,4' },
      'main-workers': { type: 'string', default: '2' },
      concurrency: { type: 'string', default: '2' },
      'clamd-threads': { type: 'string' },
      'nats-native-sha256': { type: 'boolean', default: false },
      'moat-node-options': { type: 'string', default: '' },
      'no-breakdown': { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      report: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean', default: false },
      'keep-temp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  const q = values.quick;
  const int = (name, min, fallback) => {
    const n = Number(values[name] ?? fallback);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}`);
    return n;
  };
  const workers = values.workers.split(',').map((w) => Number(w.trim()));
  if (!workers.every((w) => Number.isInteger(w) && w >= 1 && w <= 16))
    throw new Error('--workers must be a comma-separated list of integers 1..16');
  const opts = {
    help: values.help,
    rounds: int('rounds', 1, q ? 1 : 3),
    parallel: int('parallel', 1),
    files1m: int('files-1m', 4, q ? 40 : 200),
    files10m: int('files-10m', 2, q ? 8 : 40),
    repeat1m: int('repeat-1m', 4, q ? 40 : 200),
    latencySamples: int('latency-samples', 10, q ? 50 : 200),
    workers,
    mainWorkers: int('main-workers', 1),
    concurrency: int('concurrency', 1),
    breakdown: !values['no-breakdown'],
    moatNodeOptions: [
      values['moat-node-options'],
      values['nats-native-sha256'] ? `--import=${join(HERE, 'lib/native-sha256.mjs')}` : '',
    ]
      .filter(Boolean)
      .join(' '),
    quick: q,
    report: values.report,
    out: values.out,
    json: values.json,
    keepTemp: values['keep-temp'],
  };
  if (!workers.includes(opts.mainWorkers))
    throw new Error(`--main-workers ${opts.mainWorkers} must be one of --workers ${workers.join(',')}`);
  opts.clamdThreads = int('clamd-threads', 1, Math.max(...workers) * opts.concurrency);
  return opts;
}

// ---------------------------------------------------------------------------------------------------
// The stacks under test and their references, each with CPU groups and a proxy port.

async function startStacks(dir, origin, dbDir, opts) {
  const clamdSquid = await startBenchClamd(dir, 'clamd-squid', {
    repo: REPO,
    dbDir,
    maxThreads: opts.clamdThreads,
  });
  const icap = await startIcapStack(dir, { clamdSocket: clamdSquid.socket, origin });
  const clamdMoat = await startBenchClamd(dir, 'clamd-moat', {
    repo: REPO,
    dbDir,
    maxThreads: opts.clamdThreads,
  });
  const moatAv = await startMoatAv(dir, {
    repo: REPO,
    policyFile: join(HERE, 'bench-policy.yaml'),
    clamd: clamdMoat,
    dbDir,
    concurrency: opts.concurrency,
    nodeOptions: opts.moatNodeOptions,
  });
  const squidPlain = await startSquid(dir, 'squid-plain');
  const moatPlain = await startMoat(dir, {
    repo: REPO,
    policyFile: join(HERE, 'bench-policy-noav.yaml'),
    name: 'moat-plain',
  });
  const [icapSquidPid, icapPid] = icap.pids();
  return {
    'squid-av': {
      title: 'Squid + c-icap + clamd',
      port: icap.proxyPort,
      version: `${icap.squidVersion}; ${icap.cIcapVersion}; ${clamdSquid.version}`,
      cpuGroups: () => ({ squid: [icapSquidPid], 'c-icap': [icapPid], clamd: [clamdSquid.pid] }),
      clamd: clamdSquid,
      stop: async () => {
        await icap.stop();
        await clamdSquid.stop();
      },
    },
    'moat-av': {
      title: 'Moat',
      port: moatAv.port,
      version: `${moatAv.version}; ${clamdMoat.version}`,
      cpuGroups: moatAv.cpuGroups,
      moat: moatAv,
      clamd: clamdMoat,
      stop: async () => {
        await moatAv.stop();
        await clamdMoat.stop();
      },
    },
    squid: {
      title: 'Squid, no antivirus',
      port: squidPlain.port,
      version: squidPlain.version,
      cpuGroups: () => ({ squid: [squidPlain.pid] }),
      stop: () => squidPlain.stop(),
    },
    moat: {
      title: 'Moat, no antivirus',
      port: moatPlain.port,
      version: moatPlain.version,
      cpuGroups: () => {
        const [nats, redis] = moatPlain.supportPids();
        return { proxy: [moatPlain.pid], nats: [nats], redis: [redis] };
      },
      stop: () => moatPlain.stop(),
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// Correctness before measuring.

async function verify(stacks, files, originPort, dir) {
  const base = `http://127.0.0.1:${originPort}/av`;
  const eicarBytes = Buffer.from(EICAR, 'latin1');
  const clean = readFileSync(join(files.av, 'clean-10m.bin'));
  const clean1m = readFileSync(join(files.u1m, '0.bin'));
  const problems = [];
  for (const name of ['squid-av', 'moat-av']) {
    const port = stacks[name].port;
    const e = await fetchOne(port, `${base}/eicar.com`, dir);
    const signature = /Moat\.Test\.[\w.-]+/.exec(e.body.toString('latin1'))?.[0];
    if (e.status !== 403 || e.body.includes(eicarBytes))
      problems.push(`${name}: EICAR not blocked (HTTP ${e.status}, curl exit ${e.exit}, ${e.bytes} bytes)`);
    else log(`verify ${name}: eicar.com blocked, HTTP 403${signature ? ` naming ${signature}` : ''}`);
    const big = await fetchOne(port, `${base}/eicar-1m.bin`, dir);
    const delivered = big.exit === 0 && big.status === 200 && big.body.includes(eicarBytes);
    if (delivered) problems.push(`${name}: EICAR at the end of 1 MiB was delivered`);
    else
      log(
        `verify ${name}: eicar-1m.bin not delivered (${big.status === 403 ? 'HTTP 403 block page' : `HTTP ${big.status}, curl exit ${big.exit} after ${big.bytes} bytes: aborted transfer`})`,
      );
    for (const [file, want] of [
      ['clean-10m.bin', clean],
      ['u1m/0.bin', clean1m],
    ]) {
      const c = await fetchOne(port, `${base}/${file}`, dir);
      if (c.status !== 200 || c.exit !== 0 || sha256(c.body) !== sha256(want))
        problems.push(
          `${name}: clean ${file} not delivered intact (HTTP ${c.status}, exit ${c.exit}, ${c.bytes} bytes, sha256 ${c.body.length ? 'differs' : 'none'})`,
        );
      else log(`verify ${name}: ${file} delivered, sha256 equal`);
    }
  }
  for (const name of ['squid', 'moat']) {
    const e = await fetchOne(stacks[name].port, `${base}/eicar.com`, dir);
    if (e.status !== 200 || !e.body.equals(eicarBytes))
      problems.push(`${name} (the no-antivirus reference) did not deliver eicar.com: HTTP ${e.status}`);
    else log(`verify ${name}: eicar.com delivered unscanned (reference without antivirus)`);
  }
  const counts = await stacks['moat-av'].moat.verdicts();
  if (counts.infected < 2 || counts.error > 0)
    problems.push(`moat-av verdict counters after the checks: ${JSON.stringify(counts)}`);
  if (problems.length) throw new Error(`correctness checks failed:\n  ${problems.join('\n  ')}`);
}

// ---------------------------------------------------------------------------------------------------
// Measurements

async function latency(stack, urls, { unique } = {}) {
  if (unique) await stack.moat?.forgetVerdicts();
  const before = cpuOf(stack.cpuGroups());
  const { times } = await curlMany(urls, { proxyPort: stack.port, parallel: 1, size: KiB });
  const cpu = cpuDelta(before, cpuOf(stack.cpuGroups()));
  const cpuMs = Object.entries(cpu)
    .filter(([k]) => !k.endsWith(':sys'))
    .reduce((a, [, v]) => a + v, 0);
  return {
    p50: median(times),
    p90: percentile(times, 0.9),
    samples: times.length,
    cpuMsPerRequest: cpuMs / times.length,
    cpuMsPerRequestBy: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / times.length])),
  };
}

/** clamd alone, as a ceiling: INSTREAM from this process (Moat's client) or SCAN of the file in place. */
async function clamdDirect(clamd, paths, size, opts, mode) {
  const { ClamdClient } = await import('@moat/clamav');
  const client = new ClamdClient({ path: clamd.socket }, { timeoutMs: 300_000 });
  const before = cpuOf({ clamd: [clamd.pid] });
  const started = process.hrtime.bigint();
  let next = 0;
  const one = async (path) => {
    if (mode === 'instream') {
      const outcome = await client.scan(createReadStream(path, { highWaterMark: 256 * KiB }));
      if (outcome.status !== 'clean') throw new Error(`clamd INSTREAM ${path}: ${JSON.stringify(outcome)}`);
    } else {
      const reply = await clamdCommand(clamd.socket, `SCAN ${path}`, { timeoutMs: 300_000 });
      if (!reply.endsWith(': OK')) throw new Error(`clamd SCAN ${path}: ${reply}`);
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(opts.parallel, paths.length) }, async () => {
      while (next < paths.length) await one(paths[next++]);
    }),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuDelta(before, cpuOf({ clamd: [clamd.pid] }));
  const mib = (paths.length * size) / MiB;
  return {
    mibPerSec: mib / seconds,
    seconds,
    requests: paths.length,
    cpuMsPerMiB: cpu.clamd / mib,
    cpuMsPerMiBBy: { clamd: cpu.clamd / mib, 'clamd:sys': cpu['clamd:sys'] / mib },
  };
}

// ---------------------------------------------------------------------------------------------------
// Where Moat's time goes: one request at a time, unique content, each stage timed on its own.

async function breakdown(stacks, files, originPort, opts) {
  const moat = stacks['moat-av'].moat;
  const { ScanClient, openBodiesStore, DEFAULT_INLINE_LIMIT } = await import('@moat/scan');
  const { ClamdClient } = await import('@moat/clamav');
  const { connect } = await import('@nats-io/transport-node');
  const { setSha256Backend, getSha256Backend } = await import('@nats-io/obj');
  const { Redis } = await import('ioredis');
  const nc = await connect({ servers: moat.env.MOAT_NATS_URL });
  const redis = new Redis(moat.env.MOAT_REDIS_URL, { maxRetriesPerRequest: 2 });
  const scanner = new ScanClient({ nc, redis });
  const store = await openBodiesStore(nc);
  const clamdSocket = stacks['moat-av'].clamd.socket;
  const clamd = new ClamdClient({ path: clamdSocket }, { timeoutMs: 300_000 });
  const backend = getSha256Backend();
  const ms = async (fn) => {
    const t = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - t) / 1e6;
  };
  const tmp = join(files.av, 'breakdown');
  mkdirSync(tmp, { recursive: true });
  const result = {};
  const sizes = [
    ['1 KiB', KiB, opts.quick ? 10 : 50, 's1k', opts.latencySamples],
    ['1 MiB', MiB, opts.quick ? 5 : 20, 'u1m', opts.files1m],
    ['10 MiB', 10 * MiB, opts.quick ? 3 : 8, 'u10m', opts.files10m],
  ];
  try {
    for (const [label, size, samples, dirName, count] of sizes) {
      const rows = {};
      const add = (k, v) => {
        rows[k] ??= [];
        rows[k].push(v);
      };
      for (let i = 0; i < samples; i++) {
        if (i % 5 === 0) log(`breakdown ${label}: sample ${i + 1}/${samples}`);
        const content = randomBytes(size);
        add(
          'sha256 of the body, node:crypto (proxy and worker each do it once)',
          await ms(() => sha256(content)),
        );
        if (size > DEFAULT_INLINE_LIMIT) {
          // bodies above the inline limit travel through the JetStream object store
          for (const b of ['js', 'native']) {
            setSha256Backend(b);
            const name = `bench-${b}-${i}-${size}`;
            const what =
              b === 'js'
                ? "the library's default, pure-JS SHA-256"
                : "setSha256Backend('native'), as Moat runs it";
            add(`NATS object store put (proxy), ${what}`, await ms(() => store.putBlob({ name }, content)));
            add(
              `NATS object store get, whole object (worker), ${what}`,
              await ms(async () => {
                const blob = await store.getBlob(name);
                if (blob?.length !== size) throw new Error('object store returned the wrong size');
              }),
            );
            await store.delete(name);
          }
          setSha256Backend(backend);
        }
        add('clamd INSTREAM from Node, alone (64 KiB chunks)', await ms(() => clamd.scan(content)));
        const file = join(tmp, `${i}.bin`);
        writeFileSync(file, content);
        add(
          'clamd SCAN of a file in place, alone (how c-icap hands it over)',
          await ms(() => clamdCommand(clamdSocket, `SCAN ${file}`, { timeoutMs: 300_000 })),
        );
        rmSync(file);
        const fresh = randomBytes(size); // unseen content: a real scan through the queue
        let verdict;
        add(
          'ScanClient.scan, new content: hash, Redis, queue, worker, clamd, verdict',
          await ms(async () => {
            verdict = await scanner.scan({ content: fresh, timeoutMs: 120_000, direction: 'download' });
          }),
        );
        if (verdict.result !== 'clean' || verdict.cached)
          throw new Error(`breakdown scan: ${JSON.stringify(verdict)}`);
        add(
          'ScanClient.scan, same content again: hash + Redis (cache hit)',
          await ms(async () => {
            verdict = await scanner.scan({ content: fresh, timeoutMs: 120_000, direction: 'download' });
          }),
        );
        if (!verdict.cached)
          throw new Error(`breakdown repeated scan was not a cache hit: ${JSON.stringify(verdict)}`);
        // whole requests, one at a time, each for a file no cache has seen
        const url = `http://127.0.0.1:${originPort}/av/${dirName}/${i % count}.bin`;
        await moat.forgetVerdicts();
        for (const [stackName, key] of [
          ['moat-av', 'GET through Moat with antivirus'],
          ['moat', 'GET through Moat, no antivirus'],
          ['squid-av', 'GET through Squid + c-icap + clamd'],
          ['squid', 'GET through Squid, no antivirus'],
        ]) {
          const r = await curlMany([url], { proxyPort: stacks[stackName].port, size });
          add(key, r.times[0]);
        }
        add('GET from the origin directly', (await curlMany([url], { size })).times[0]);
      }
      result[label] = Object.fromEntries(
        Object.entries(rows).map(([k, v]) => [
          k,
          { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length },
        ]),
      );
    }
  } finally {
    setSha256Backend(backend);
    scanner.close();
    redis.disconnect();
    await nc.close();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Report

function summarise(runs, opts) {
  const pick = (test, stack, workers, value) =>
    stat(
      runs
        .filter(
          (r) => r.test === test && r.stack === stack && (workers === undefined || r.workers === workers),
        )
        .map(value),
    );
  const s = { throughput: {}, main: {}, cpuBy: {} };
  const mw = opts.mainWorkers;
  for (const test of ['unique-1m', 'unique-10m']) {
    for (const [key, value] of [
      ['mibPerSec', (r) => r.mibPerSec],
      ['cpuMsPerMiB', (r) => r.cpuMsPerMiB],
    ]) {
      const row = { squid: pick(test, 'squid-av', undefined, value) };
      for (const w of opts.workers) row[`moat${w}`] = pick(test, 'moat-av', w, value);
      row.squidPlain = pick(test, 'squid', undefined, value);
      row.moatPlain = pick(test, 'moat', undefined, value);
      row.instream = pick(test, 'clamd-instream', undefined, value);
      row.scanFile = pick(test, 'clamd-scan', undefined, value);
      // per pair (a Moat worker count and the Squid measurement beside it): Moat/Squid
      for (const w of opts.workers) {
        const ratios = [];
        for (let round = 0; round < opts.rounds; round++) {
          const m = runs.find(
            (r) => r.test === test && r.stack === 'moat-av' && r.workers === w && r.round === round,
          );
          const q = runs.find(
            (r) => r.test === test && r.stack === 'squid-av' && r.pairedWith === w && r.round === round,
          );
          if (m && q) ratios.push(value(m) / value(q));
        }
        row[`paired${w}`] = stat(ratios);
      }
      s.throughput[`${test}:${key}`] = row;
    }
  }
  const both = (test, value, workers = mw) => ({
    squid: pick(test, 'squid-av', undefined, value),
    moat: pick(test, 'moat-av', workers, value),
  });
  s.main['repeat-1m:mibPerSec'] = both('repeat-1m', (r) => r.mibPerSec);
  s.main['repeat-1m:cpuMsPerMiB'] = both('repeat-1m', (r) => r.cpuMsPerMiB);
  for (const p of ['p50', 'p90']) {
    s.main[`latency:${p}`] = both('latency', (r) => r[p]);
    s.main[`latency-plain:${p}`] = {
      squid: pick('latency', 'squid', undefined, (r) => r[p]),
      moat: pick('latency', 'moat', undefined, (r) => r[p]),
    };
    s.main[`latency-added:${p}`] = both('latency', (r) => r.added?.[p]);
    s.main[`latency-repeat:${p}`] = both('latency-repeat', (r) => r[p]);
  }
  s.main['latency:cpu'] = both('latency', (r) => r.cpuMsPerRequest);
  s.main['latency-plain:cpu'] = {
    squid: pick('latency', 'squid', undefined, (r) => r.cpuMsPerRequest),
    moat: pick('latency', 'moat', undefined, (r) => r.cpuMsPerRequest),
  };
  s.main['latency-repeat:cpu'] = both('latency-repeat', (r) => r.cpuMsPerRequest);
  for (const test of ['unique-1m', 'unique-10m', 'repeat-1m', 'latency']) {
    const field = test === 'latency' ? 'cpuMsPerRequestBy' : 'cpuMsPerMiBBy';
    for (const stack of ['squid-av', 'moat-av', 'squid', 'moat']) {
      const rs = runs.filter(
        (r) => r.test === test && r.stack === stack && (stack !== 'moat-av' || r.workers === mw),
      );
      if (!rs.length) continue;
      const names = [...new Set(rs.flatMap((r) => Object.keys(r[field] ?? {})))];
      s.cpuBy[`${test}:${stack}`] = Object.fromEntries(
        names.map((n) => [n, stat(rs.map((r) => r[field][n]))]),
      );
    }
  }
  return s;
}

function markdown(result) {
  const { options: opts, summary: s, breakdown: b } = result;
  const W = opts.workers;
  const mw = opts.mainWorkers;
  const out = [];
  out.push(
    `## Gateway antivirus: Moat vs Squid + c-icap + clamd (${opts.rounds} round${opts.rounds > 1 ? 's' : ''})`,
    '',
    `${result.date.slice(0, 10)}, ${result.commit}, ${result.machine}.`,
    '',
    `Squid side: ${result.versions['squid-av']}. Moat side: ${result.versions['moat-av']}.${opts.moatNodeOptions ? ` Moat's proxy and workers ran with NODE_OPTIONS=\`${opts.moatNodeOptions}\`.` : ''}`,
    `Load: curl --parallel --parallel-max ${opts.parallel}; ${opts.files1m} × 1 MiB and ${opts.files10m} × 10 MiB distinct random files per measurement; clamd MaxThreads ${opts.clamdThreads} on each side; Moat's av-scanner workers scan ${opts.concurrency} at a time each.`,
    '',
    '### Unique files (nothing cached anywhere)',
    '',
    `| metric | Squid + c-icap | ${W.map((w) => `Moat, ${w} worker${w > 1 ? 's' : ''}`).join(' | ')} | ${W.map((w) => `Moat ${w}w / Squid`).join(' | ')} | no AV: Squid | no AV: Moat | clamd INSTREAM alone | clamd SCAN file alone |`,
    `|---|--:|${W.map(() => '--:').join('|')}|${W.map(() => '--:').join('|')}|--:|--:|--:|--:|`,
  );
  const labels = {
    'unique-1m:mibPerSec': 'unique 1 MiB files, MiB/s ↑',
    'unique-10m:mibPerSec': 'unique 10 MiB files, MiB/s ↑',
    'unique-1m:cpuMsPerMiB': 'CPU per MiB, 1 MiB files, ms ↓',
    'unique-10m:cpuMsPerMiB': 'CPU per MiB, 10 MiB files, ms ↓',
  };
  for (const [key, label] of Object.entries(labels)) {
    const r = s.throughput[key];
    out.push(
      `| ${label} | ${cell(r.squid)} | ${W.map((w) => cell(r[`moat${w}`])).join(' | ')} | ${W.map((w) => `${ratio(r[`moat${w}`], r.squid)} (${fmt(r[`paired${w}`]?.median, 2)})`).join(' | ')} | ${cell(r.squidPlain)} | ${cell(r.moatPlain)} | ${cell(r.instream)} | ${cell(r.scanFile)} |`,
    );
  }
  out.push(
    '',
    `### Small responses and a repeated file (Moat with ${mw} worker${mw > 1 ? 's' : ''})`,
    '',
    '| metric | Squid + c-icap | Moat | Moat/Squid |',
    '|---|--:|--:|--:|',
  );
  const mainLabels = {
    'latency:p50': '1 KiB GET (unique file), median ms ↓',
    'latency:p90': '1 KiB GET (unique file), p90 ms ↓',
    'latency-plain:p50': 'the same without antivirus, median ms',
    'latency-plain:p90': 'the same without antivirus, p90 ms',
    'latency-added:p50': '**added by antivirus, median ms ↓**',
    'latency-added:p90': '**added by antivirus, p90 ms ↓**',
    'latency-repeat:p50': '1 KiB GET, file seen before, median ms ↓',
    'latency-repeat:p90': '1 KiB GET, file seen before, p90 ms ↓',
    'latency:cpu': 'CPU per 1 KiB GET (unique file), ms ↓',
    'latency-plain:cpu': 'CPU per 1 KiB GET without antivirus, ms',
    'latency-repeat:cpu': 'CPU per 1 KiB GET, file seen before, ms ↓',
    'repeat-1m:mibPerSec': 'repeated 1 MiB file, MiB/s ↑',
    'repeat-1m:cpuMsPerMiB': 'CPU per MiB, repeated 1 MiB file, ms ↓',
  };
  for (const [key, label] of Object.entries(mainLabels)) {
    const r = s.main[key];
    out.push(`| ${label} | ${cell(r.squid)} | ${cell(r.moat)} | ${ratio(r.moat, r.squid)} |`);
  }
  out.push(
    '',
    `### CPU by process (ms per MiB; for latency ms per 1 KiB request; medians; in brackets the part spent in the kernel; Moat with ${mw} workers)`,
    '',
  );
  out.push('| test | stack | processes |', '|---|---|---|');
  for (const [key, by] of Object.entries(s.cpuBy)) {
    const [test, stack] = key.split(':');
    if (test !== 'latency' && !stack.endsWith('-av')) continue; // no-AV throughput CPU: in the JSON
    const names = Object.keys(by).filter((n) => !n.endsWith(':sys'));
    out.push(
      `| ${test} | ${stack} | ${names
        .map((n) => `${n} ${fmt(by[n]?.median)} (${fmt(by[`${n}:sys`]?.median)})`)
        .join(', ')} |`,
    );
  }
  if (b) {
    out.push(
      '',
      '### Where Moat spends a request (one at a time, unique content; medians, ms)',
      '',
      '| stage | 1 KiB | 1 MiB | 10 MiB |',
      '|---|--:|--:|--:|',
    );
    for (const k of Object.keys(b['1 MiB']))
      out.push(
        `| ${k} | ${fmt(b['1 KiB'][k]?.median)} | ${fmt(b['1 MiB'][k].median)} | ${fmt(b['10 MiB'][k]?.median)} |`,
      );
  }
  out.push(
    '',
    'Cells: median (min–max) over the rounds; ratios are ratios of medians, in brackets the median of the per-pair ratios (each Moat measurement over the Squid one beside it). "Added" is the stack with antivirus minus the same stack without, per round. CPU: user + system of every process of the stack (with children), not the client or the origin.',
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------------

async function main() {
  const opts = options();
  if (opts.help) {
    console.log(HELP);
    return 0;
  }
  if (opts.report) {
    console.log(markdown(JSON.parse(readFileSync(opts.report, 'utf8'))));
    return 0;
  }
  for (const bin of ['/usr/sbin/nginx', '/usr/sbin/squid', '/usr/bin/c-icap', '/usr/sbin/clamd'])
    if (!existsSync(bin)) throw new Error(`${bin} missing (see README.md: apt-get install …)`);
  for (const built of [
    'services/proxy/dist/main.js',
    'services/av-scanner/dist/main.js',
    'packages/clamav/dist/index.js',
    'packages/scan/dist/index.js',
    'packages/policy/dist/index.js',
  ])
    if (!existsSync(join(REPO, built))) throw new Error(`${built} missing: npx turbo run build first`);
  if (process.getuid?.() === 0 && !process.env.MOAT_BENCH_NETNS) return rerunInNetns('moat-bench-av');

  installCleanupHandlers();
  if (opts.keepTemp) keepTempDirs();
  const dir = makeTempDir('moat-av-bench-');
  log(
    `temp dir ${dir}${process.env.MOAT_BENCH_NETNS ? `, network namespace ${process.env.MOAT_BENCH_NETNS}` : ' (host loopback: not root)'}`,
  );
  const origin = await startOrigin(dir);
  log(
    `writing ${opts.files1m} × 1 MiB, ${opts.files10m} × 10 MiB and ${opts.latencySamples} × 1 KiB random files`,
  );
  const files = writeFiles(join(dir, 'origin', 'www'), opts);
  const dbDir = join(dir, 'clamav-db');
  const { writeTestSignatures } = await import(join(REPO, 'packages/clamav/dist/index.js'));
  writeTestSignatures(dbDir);

  const stacks = await startStacks(dir, origin, dbDir, opts);
  const moat = stacks['moat-av'].moat;
  await moat.setWorkers(opts.workers[0]);
  for (const [name, s] of Object.entries(stacks)) log(`${name}: ${s.version}`);
  await verify(stacks, files, origin.port, dir);

  const base = `http://127.0.0.1:${origin.port}/av`;
  const urls1m = Array.from({ length: opts.files1m }, (_, i) => `${base}/u1m/${i}.bin`);
  const urls10m = Array.from({ length: opts.files10m }, (_, i) => `${base}/u10m/${i}.bin`);
  const paths1m = Array.from({ length: opts.files1m }, (_, i) => join(files.u1m, `${i}.bin`));
  const paths10m = Array.from({ length: opts.files10m }, (_, i) => join(files.u10m, `${i}.bin`));
  const urls1k = Array.from({ length: opts.latencySamples }, (_, i) => `${base}/s1k/${i}.bin`);
  const repeat = Array.from({ length: opts.repeat1m }, () => `${base}/fixed-1m.bin`);

  // warm-up (JIT, connections, c-icap children), not counted
  log('warm-up');
  for (const name of ['squid-av', 'moat-av', 'squid', 'moat'])
    await curlMany(urls1m.slice(0, 16), { proxyPort: stacks[name].port, parallel: opts.parallel, size: MiB });

  const runs = [];
  const total = opts.rounds;
  const record = (round, test, stack, extra, r, show) => {
    runs.push({ round, test, stack, ...extra, ...r });
    log(
      `round ${round + 1}/${total}: ${stack}${extra.workers ? ` ×${extra.workers}` : ''} ${test}: ${show(r)}`,
    );
  };
  const mibs = (r) => `${fmt(r.mibPerSec)} MiB/s, CPU ${fmt(r.cpuMsPerMiB)} ms/MiB`;
  const lat = (r) => `p50 ${fmt(r.p50)} ms, p90 ${fmt(r.p90)} ms`;

  // Each Moat worker count is paired with a Squid measurement right before or after it (who goes
  // first alternates between pairs and rounds), so a burst of outside load hits both sides of a pair.
  const clamdRefs = async (round) => {
    const clamd = stacks['moat-av'].clamd;
    for (const [mode, name] of [
      ['instream', 'clamd-instream'],
      ['scan', 'clamd-scan'],
    ]) {
      record(round, 'unique-1m', name, {}, await clamdDirect(clamd, paths1m, MiB, opts, mode), mibs);
      record(round, 'unique-10m', name, {}, await clamdDirect(clamd, paths10m, 10 * MiB, opts, mode), mibs);
    }
  };
  for (let round = 0; round < opts.rounds; round++) {
    const flip = round % 2 === 1;
    const counts = flip ? [...opts.workers].reverse() : opts.workers;
    if (!flip) await clamdRefs(round);
    for (const [i, w] of counts.entries()) {
      await moat.setWorkers(w);
      const pairOrder = (round + i) % 2 === 0 ? ['squid-av', 'moat-av'] : ['moat-av', 'squid-av'];
      for (const stackName of pairOrder) await measureBlock(round, { stack: stackName, workers: w });
    }
    if (flip) await clamdRefs(round);
  }

  async function measureBlock(round, block) {
    const flip = round % 2 === 1;
    const av = stacks[block.stack];
    const plainName = block.stack === 'squid-av' ? 'squid' : 'moat';
    const plain = stacks[plainName];
    // Moat: the worker count measured; Squid: the Moat worker count it is paired with
    const extra = block.stack === 'moat-av' ? { workers: block.workers } : { pairedWith: block.workers };
    record(
      round,
      'unique-1m',
      block.stack,
      extra,
      await throughput(av, urls1m, MiB, opts, { expect: 'unique' }),
      mibs,
    );
    record(
      round,
      'unique-10m',
      block.stack,
      extra,
      await throughput(av, urls10m, 10 * MiB, opts, { expect: 'unique' }),
      mibs,
    );
    if (block.workers !== opts.mainWorkers) return;
    // repeated file: one fetch first (Moat: scanned, then cached), then the measured ones
    await curlMany([repeat[0]], { proxyPort: av.port, size: MiB });
    record(
      round,
      'repeat-1m',
      block.stack,
      extra,
      await throughput(av, repeat, MiB, opts, { expect: 'cached' }),
      mibs,
    );
    // small responses: the stack with and without antivirus back to back (order flips per round)
    const pair = flip ? ['plain', 'av'] : ['av', 'plain'];
    const lats = {};
    for (const which of pair) {
      if (which === 'av') {
        lats.av = await latency(av, urls1k, { unique: true });
        lats.repeat = await latency(av, urls1k);
      } else lats.plain = await latency(plain, urls1k);
    }
    lats.av.added = { p50: lats.av.p50 - lats.plain.p50, p90: lats.av.p90 - lats.plain.p90 };
    record(
      round,
      'latency',
      block.stack,
      extra,
      lats.av,
      (r) => `${lat(r)} (added: p50 ${fmt(r.added.p50)}, p90 ${fmt(r.added.p90)})`,
    );
    record(round, 'latency-repeat', block.stack, extra, lats.repeat, lat);
    record(round, 'latency', plainName, {}, lats.plain, lat);
    // the stack without antivirus moving the same files: what the proxy alone costs
    record(round, 'unique-1m', plainName, {}, await throughput(plain, urls1m, MiB, opts), mibs);
    record(round, 'unique-10m', plainName, {}, await throughput(plain, urls10m, 10 * MiB, opts), mibs);
    await sleep(300);
  }

  let bd;
  if (opts.breakdown) {
    await moat.setWorkers(opts.mainWorkers);
    bd = await breakdown(stacks, files, origin.port, opts);
  }

  const result = {
    ...(await runIdentity(REPO)),
    options: opts,
    versions: Object.fromEntries(Object.entries(stacks).map(([k, v]) => [k, v.version])),
    summary: summarise(runs, opts),
    breakdown: bd,
    runs,
  };
  const file = resultsPath(opts.out, 'av');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`results written to ${file}`);
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  else console.log(`\n${markdown(result)}`);

  for (const name of ['squid-av', 'moat-av', 'squid', 'moat']) await stacks[name].stop();
  await origin.stop();
  return 0;
}

runMain(main, 'bench.mjs');
