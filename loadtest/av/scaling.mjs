#!/usr/bin/env node
// loadtest/av — horizontal scaling of Moat's antivirus: unique files through the proxy with 1, 2, …
// av-scanner pods, each pod a worker with a clamd of its own under one CPU limit, as the chart
// deploys them. Reports MiB/s per pod count and the speed-up over one pod. See README.md.
// A benchmark, not a test: run it by hand, never in CI.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
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
import { resultsPath, runIdentity } from '../proxy/lib/report.mjs';
import { startOrigin } from '../proxy/lib/stacks.mjs';
import { EICAR } from './lib/icap-stack.mjs';
import { cell, curlMany, fetchOne, fmt, MiB, sha256, stat, throughput, writeFiles } from './lib/measure.mjs';
import { startMoatAv } from './lib/moat-av.mjs';

const REPO = resolve(fileURLToPath(new URL('../../', import.meta.url)));
const HERE = join(REPO, 'loadtest/av');

const HELP = `Usage: node loadtest/av/scaling.mjs [options]   (as root; it runs in a network namespace of its own)

Does adding av-scanner workers raise Moat's scan throughput? Moat's proxy, NATS and Redis, and N
av-scanner "pods": each pod is one worker process and a clamd of its own inside one cgroup with a CPU
limit of --pod-cpu cores (a CFS quota, as Kubernetes enforces a pod's CPU limit). So each pod brings
its own CPU budget, as a pod on a node with free cores does. Unique random files are fetched through
the proxy with curl; the verdict cache is emptied before each measurement and every file must be a
real scan. Reports MiB/s per pod count (medians over rounds) and the speed-up over one pod.

On a machine with few cores the proxy, NATS, curl and nginx use the same cores as the pods: the pods'
budgets together plus what the rest needs must fit in the machine, or the speed-up flattens out. The
report shows how often each pod count hit its CPU limit (the share of throttled periods).

  --rounds N          rounds; the pod counts run in order, then reversed, alternately (default 3)
  --pods LIST         pod counts to measure (default 1,2)
  --pod-cpu CORES     CPU limit of each pod, worker and clamd together (default 0.4)
  --concurrency N     scans at once per worker, MOAT_AV_SCANNER_CONCURRENCY; also the pod's clamd
                      MaxThreads (default 2)
  --parallel N        parallel transfers of the load client, curl --parallel (default 8)
  --files-1m N        distinct random 1 MiB files per measurement (default 120)
  --files-10m N       distinct random 10 MiB files per measurement (default 16)
  --quick             a short smoke: 1 round, 24 x 1 MiB, 4 x 10 MiB
  --report FILE       print the markdown table of a saved results file, measure nothing
  --out FILE          results file (default loadtest/results/av-scaling-<date>.json)
  --json              print the whole result as JSON instead of the markdown table
  --keep-temp         keep the temp dir (configs, logs, files) for inspection
  -h, --help          this text

Needs root (network namespace, cgroups), nginx, clamav-daemon, nats-server, redis-server, curl;
services built (npx turbo run build).`;

function options() {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string' },
      pods: { type: 'string', default: '1,2' },
      'pod-cpu': { type: 'string', default: '0.4' },
      concurrency: { type: 'string', default: '2' },
      parallel: { type: 'string', default: '8' },
      'files-1m': { type: 'string' },
      'files-10m': { type: 'string' },
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
  const pods = values.pods.split(',').map((p) => Number(p.trim()));
  if (!pods.every((p) => Number.isInteger(p) && p >= 1 && p <= 8))
    throw new Error('--pods must be a comma-separated list of integers 1..8');
  if (!pods.includes(1)) throw new Error('--pods must include 1 (the speed-up is over one pod)');
  const podCpu = Number(values['pod-cpu']);
  if (!(podCpu >= 0.05 && podCpu <= os.cpus().length))
    throw new Error(`--pod-cpu must be between 0.05 and ${os.cpus().length} cores`);
  return {
    help: values.help,
    rounds: int('rounds', 1, q ? 1 : 3),
    pods,
    podCpu,
    concurrency: int('concurrency', 1),
    parallel: int('parallel', 1),
    files1m: int('files-1m', 4, q ? 24 : 120),
    files10m: int('files-10m', 2, q ? 4 : 16),
    latencySamples: 0,
    quick: q,
    report: values.report,
    out: values.out,
    json: values.json,
    keepTemp: values['keep-temp'],
  };
}

/** Before measuring: EICAR is blocked and a clean 10 MiB file arrives intact. */
async function verify(moat, files, originPort, dir) {
  const base = `http://127.0.0.1:${originPort}/av`;
  const e = await fetchOne(moat.port, `${base}/eicar.com`, dir);
  if (e.status !== 403 || e.body.includes(Buffer.from(EICAR, 'latin1')))
    throw new Error(`EICAR not blocked: HTTP ${e.status}, curl exit ${e.exit}`);
  const want = readFileSync(join(files.u10m, '0.bin'));
  const c = await fetchOne(moat.port, `${base}/u10m/0.bin`, dir);
  if (c.status !== 200 || sha256(c.body) !== sha256(want))
    throw new Error(`clean 10 MiB file not delivered intact: HTTP ${c.status}, ${c.bytes} bytes`);
  log(`verify ${moat.workerCount()} pod(s): eicar.com blocked (403), clean 10 MiB delivered, sha256 equal`);
}

async function measure(moat, urls, size, opts) {
  const before = moat.podThrottling();
  const stack = { moat, port: moat.port, cpuGroups: moat.cpuGroups };
  const r = await throughput(stack, urls, size, opts, { expect: 'unique' });
  const after = moat.podThrottling();
  const periods = after.periods - before.periods;
  const pods = moat.workerCount();
  const podCpuMs = (r.cpuMsPerMiBBy.workers + r.cpuMsPerMiBBy.clamd) * ((urls.length * size) / MiB);
  return {
    ...r,
    throttledShare: periods ? (after.throttledPeriods - before.throttledPeriods) / periods : 0,
    podCpuUse: podCpuMs / (r.seconds * 1000 * opts.podCpu * pods),
  };
}

function summarise(runs, opts) {
  const out = {};
  for (const test of ['unique-1m', 'unique-10m']) {
    const of = (pods, f) => stat(runs.filter((r) => r.test === test && r.pods === pods).map(f));
    out[test] = Object.fromEntries(
      opts.pods.map((p) => {
        const perRound = [];
        for (let round = 0; round < opts.rounds; round++) {
          const one = runs.find((r) => r.test === test && r.pods === 1 && r.round === round);
          const this_ = runs.find((r) => r.test === test && r.pods === p && r.round === round);
          if (one && this_) perRound.push(this_.mibPerSec / one.mibPerSec);
        }
        return [
          p,
          {
            mibPerSec: of(p, (r) => r.mibPerSec),
            speedup: stat(perRound),
            cpuMsPerMiB: of(p, (r) => r.cpuMsPerMiB),
            throttledShare: of(p, (r) => r.throttledShare),
            podCpuUse: of(p, (r) => r.podCpuUse),
          },
        ];
      }),
    );
  }
  return out;
}

function markdown(result) {
  const { options: opts, summary } = result;
  const pct = (s) => (s ? `${fmt(s.median * 100, 0)} %` : '—');
  const out = [
    `## Gateway antivirus, horizontal scaling: Moat with ${opts.pods.join(', ')} av-scanner pods (${opts.rounds} round${opts.rounds > 1 ? 's' : ''})`,
    '',
    `${result.date.slice(0, 10)}, ${result.commit}, ${result.machine}. ${result.version}.`,
    `Each pod: one av-scanner worker (${opts.concurrency} scans at a time) and its own clamd (MaxThreads ${opts.concurrency}) under a CPU limit of ${opts.podCpu} cores. Load: curl --parallel-max ${opts.parallel}; ${opts.files1m} × 1 MiB and ${opts.files10m} × 10 MiB distinct random files per measurement, verdict cache emptied, every file scanned.`,
    '',
    "| files | pods | MiB/s ↑ | speed-up over 1 pod (median of per-round ratios) | pods at their CPU limit (throttled periods) | pods' CPU used / budget | CPU per MiB, whole stack, ms |",
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const [test, byPods] of Object.entries(summary)) {
    for (const [pods, s] of Object.entries(byPods)) {
      const speed =
        s.mibPerSec && byPods[1].mibPerSec ? s.mibPerSec.median / byPods[1].mibPerSec.median : undefined;
      out.push(
        `| ${test === 'unique-1m' ? '1 MiB' : '10 MiB'} | ${pods} | ${cell(s.mibPerSec)} | **${fmt(speed, 2)}** (${fmt(s.speedup?.median, 2)}) | ${pct(s.throttledShare)} | ${pct(s.podCpuUse)} | ${cell(s.cpuMsPerMiB)} |`,
      );
    }
  }
  out.push(
    '',
    'Cells: median (min–max) over the rounds. Speed-up: the ratio of the medians, in brackets the median of the per-round ratios. CPU: user + system of the proxy, NATS, Redis, the workers and their clamds, not curl or nginx.',
  );
  return out.join('\n');
}

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
  if (process.getuid?.() !== 0) throw new Error('run as root: the pods are cgroups with a CPU limit');
  for (const bin of ['/usr/sbin/nginx', '/usr/sbin/clamd'])
    if (!existsSync(bin)) throw new Error(`${bin} missing (see README.md: apt-get install …)`);
  for (const built of ['services/proxy/dist/main.js', 'services/av-scanner/dist/main.js'])
    if (!existsSync(join(REPO, built))) throw new Error(`${built} missing: npx turbo run build first`);
  if (!process.env.MOAT_BENCH_NETNS) return rerunInNetns('moat-bench-avs', { keepSysfs: true });

  installCleanupHandlers();
  if (opts.keepTemp) keepTempDirs();
  const dir = makeTempDir('moat-av-scaling-');
  log(`temp dir ${dir}, network namespace ${process.env.MOAT_BENCH_NETNS}`);
  const origin = await startOrigin(dir);
  log(`writing ${opts.files1m} × 1 MiB and ${opts.files10m} × 10 MiB random files`);
  const files = writeFiles(join(dir, 'origin', 'www'), opts);
  const dbDir = join(dir, 'clamav-db');
  const { writeTestSignatures } = await import(join(REPO, 'packages/clamav/dist/index.js'));
  writeTestSignatures(dbDir);

  const moat = await startMoatAv(dir, {
    repo: REPO,
    policyFile: join(HERE, 'bench-policy.yaml'),
    podCpu: opts.podCpu,
    dbDir,
    concurrency: opts.concurrency,
  });
  await moat.setWorkers(1);
  await verify(moat, files, origin.port, dir);

  const base = `http://127.0.0.1:${origin.port}/av`;
  const urls1m = Array.from({ length: opts.files1m }, (_, i) => `${base}/u1m/${i}.bin`);
  const urls10m = Array.from({ length: opts.files10m }, (_, i) => `${base}/u10m/${i}.bin`);
  log('warm-up');
  await curlMany(urls1m.slice(0, 16), { proxyPort: moat.port, parallel: opts.parallel, size: MiB });

  const runs = [];
  for (let round = 0; round < opts.rounds; round++) {
    const order = round % 2 === 1 ? [...opts.pods].reverse() : opts.pods;
    for (const pods of order) {
      await moat.setWorkers(pods);
      for (const [test, urls, size] of [
        ['unique-1m', urls1m, MiB],
        ['unique-10m', urls10m, 10 * MiB],
      ]) {
        const r = await measure(moat, urls, size, opts);
        runs.push({ round, test, pods, ...r });
        log(
          `round ${round + 1}/${opts.rounds}: ${pods} pod(s) ${test}: ${fmt(r.mibPerSec)} MiB/s, throttled ${fmt(r.throttledShare * 100, 0)} % of periods, pods' CPU ${fmt(r.podCpuUse * 100, 0)} % of budget`,
        );
      }
    }
  }

  const result = {
    ...(await runIdentity(REPO)),
    version: moat.version,
    options: opts,
    summary: summarise(runs, opts),
    runs,
  };
  const file = resultsPath(opts.out, 'av-scaling');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`results written to ${file}`);
  if (opts.json) console.log(JSON.stringify(result, null, 2));
  else console.log(`\n${markdown(result)}`);
  await moat.stop();
  await origin.stop();
  return 0;
}

runMain(main, 'scaling.mjs');
