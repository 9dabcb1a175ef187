#!/usr/bin/env node
// loadtest/av — smoke check of the comparison stack Squid → ICAP → c-icap (virus_scan, clamd_mod) → clamd:
// clean downloads arrive intact, EICAR (plain, zipped, inside a large file, uploaded) does not.
// Prints what the client sees; exits non-zero on a failure. `--measure` adds quick throughput and
// latency figures (not a benchmark: one run, no interleaving). Loopback only.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cpuMs } from '../proxy/lib/load.mjs';
import { installCleanupHandlers, keepTempDirs, log, makeTempDir, run, runMain } from '../proxy/lib/procs.mjs';
import { median } from '../proxy/lib/report.mjs';
import { cleanEnv, startOrigin, startSquid } from '../proxy/lib/stacks.mjs';
import {
  clamdCommand,
  EICAR,
  startClamdForBench,
  startIcapStack,
  writeBenchSignatures,
} from './lib/icap-stack.mjs';

const HELP = `Usage: node loadtest/av/icap-smoke.mjs [--measure] [--keep-temp]

Starts nginx (origin), clamd (bench signatures: EICAR body + MD5), c-icap and Squid on loopback
and fetches through Squid with curl: 1 KiB, 1 MiB and 10 MiB clean files must arrive intact
(sha256), EICAR as eicar.com, in eicar.zip, appended to 1 MiB of random data, and uploaded (POST)
must not. Prints a table of what the client saw; exit 1 on any failure.

  --measure            also: MiB/s for unique 1 MiB files (4 parallel curl loops, 10 s) and
                       1 KiB GET latency through Squid + c-icap vs a plain Squid
  --measure-seconds N  duration of the throughput run (default 10)
  --keep-temp          keep the temp dir (configs, logs)
  -h, --help           this text`;

const CURL = 'curl';
const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

/** The test files, written into the origin's document root under /av/. */
function writeFiles(www) {
  const av = join(www, 'av');
  mkdirSync(av, { recursive: true });
  const files = {
    'clean-1k.bin': randomBytes(1024),
    'clean-1m.bin': randomBytes(1024 * 1024),
    'clean-10m.bin': randomBytes(10 * 1024 * 1024),
    'eicar.com': Buffer.from(EICAR, 'latin1'),
    'eicar-1m.bin': Buffer.concat([randomBytes(1024 * 1024), Buffer.from(EICAR, 'latin1')]),
  };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(av, name), data);
  return av;
}

async function makeZip(av) {
  const py = `import zipfile,sys
with zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[2], 'eicar.com')`;
  const res = await run('python3', ['-c', py, join(av, 'eicar.zip'), join(av, 'eicar.com')]);
  if (res.code !== 0) throw new Error(`python3 zipfile: ${res.stderr}`);
}

/**
 * One curl through the proxy. Returns { exit, status, bytes, seconds, body, error }: what the client
 * saw, including a transfer that stopped half-way.
 */
async function fetchVia(proxyPort, url, { dir, method = 'GET', upload, maxTime = 120 }) {
  const out = join(dir, `curl-${Math.random().toString(36).slice(2)}.out`);
  const args = [
    '-sS',
    '-x',
    `http://127.0.0.1:${proxyPort}`,
    '-o',
    out,
    '-w',
    '%{http_code} %{size_download} %{time_total}',
    '--max-time',
    String(maxTime),
  ];
  if (method !== 'GET') args.push('-X', method);
  if (upload) args.push('--data-binary', `@${upload}`, '-H', 'Content-Type: application/octet-stream');
  args.push(url);
  const res = await run(CURL, args, { env: cleanEnv(), timeoutMs: (maxTime + 10) * 1000 });
  const [status, bytes, seconds] = res.stdout.trim().split(' ');
  let body = Buffer.alloc(0);
  try {
    body = readFileSync(out);
  } catch {}
  return {
    exit: res.code,
    status: Number(status),
    bytes: Number(bytes),
    seconds: Number(seconds),
    body,
    error: res.stderr.trim(),
  };
}

const snippet = (body) => {
  const printable = (b) => (b >= 0x20 && b <= 0x7e) || b === 0x09 || b === 0x0a || b === 0x0d;
  if (!body.subarray(0, 400).every(printable)) return `(binary, ${body.length} bytes)`;
  return body
    .toString('latin1')
    .replace(/<[^>]*>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 140);
};

async function smoke({ dir, origin, stack, av }) {
  const base = `http://127.0.0.1:${origin.port}/av`;
  const rows = [];
  const check = (name, r, ok, note) => {
    rows.push({ name, ok, r, note });
    log(
      `${ok ? 'ok  ' : 'FAIL'} ${name}: curl exit ${r.exit}, HTTP ${r.status}, ${r.bytes} bytes ${note ?? ''}`,
    );
  };
  for (const name of ['clean-1k.bin', 'clean-1m.bin', 'clean-10m.bin']) {
    const want = sha256(readFileSync(join(av, name)));
    const r = await fetchVia(stack.proxyPort, `${base}/${name}`, { dir });
    const same = sha256(r.body) === want;
    check(
      `GET ${name}`,
      r,
      r.exit === 0 && r.status === 200 && same,
      same ? 'sha256 equal' : 'sha256 DIFFERS',
    );
  }
  const eicarBytes = readFileSync(join(av, 'eicar.com'));
  for (const name of ['eicar.com', 'eicar.zip', 'eicar-1m.bin']) {
    const original = readFileSync(join(av, name));
    const r = await fetchVia(stack.proxyPort, `${base}/${name}`, { dir });
    const delivered = r.exit === 0 && r.status === 200 && r.body.equals(original);
    const containsEicar = r.body.includes(eicarBytes);
    const how =
      r.status === 403 || (r.status >= 400 && r.exit === 0)
        ? 'blocked with a page'
        : r.exit !== 0
          ? `transfer aborted after ${r.bytes} of ${original.length} bytes`
          : 'DELIVERED';
    check(
      `GET ${name}`,
      r,
      !delivered && !containsEicar,
      `${how}${containsEicar ? ', EICAR reached the client' : ''}`,
    );
  }
  // REQMOD: an upload carrying EICAR is stopped by c-icap; a clean one reaches nginx (which answers
  // 405 to a POST on a static file: proof it got through).
  const up = await fetchVia(stack.proxyPort, `${base}/clean-1k.bin`, {
    dir,
    method: 'POST',
    upload: join(av, 'eicar.com'),
  });
  check('POST eicar.com', up, up.status === 403, up.status === 403 ? 'blocked (REQMOD)' : 'NOT blocked');
  const upClean = await fetchVia(stack.proxyPort, `${base}/clean-1k.bin`, {
    dir,
    method: 'POST',
    upload: join(av, 'clean-1m.bin'),
  });
  check(
    'POST clean-1m.bin',
    upClean,
    upClean.status === 405,
    upClean.status === 405 ? 'passed to the origin (nginx 405)' : 'did not reach the origin',
  );
  return rows;
}

function printTable(rows) {
  const lines = [
    '| request | result | curl exit | HTTP | bytes received | client saw |',
    '| --- | --- | --- | --- | --- | --- |',
  ];
  for (const { name, ok, r, note } of rows)
    lines.push(
      `| ${name} | ${ok ? 'ok' : '**FAIL**'} | ${r.exit}${r.exit ? ` (${r.error.replace(/\|/g, '/').slice(0, 60)})` : ''} | ${r.status} | ${r.bytes} | ${note}; body: ${snippet(r.body).replace(/\|/g, '/')} |`,
    );
  console.log(lines.join('\n'));
}

// --- quick measurements (--measure) ---

/** `streams` curl loops, each fetching distinct URLs in batches over one keep-alive connection, for `seconds`. */
async function throughput(proxyPort, urls, { streams, seconds }) {
  let next = 0;
  let bytes = 0;
  let requests = 0;
  let bad = 0;
  const started = process.hrtime.bigint();
  const deadline = Date.now() + seconds * 1000;
  const loop = async () => {
    while (Date.now() < deadline) {
      const batch = Array.from({ length: 8 }, () => urls[next++ % urls.length]);
      const args = ['-sS', '-x', `http://127.0.0.1:${proxyPort}`, '-w', '%{http_code} %{size_download}\\n'];
      for (const u of batch) args.push('-o', '/dev/null', u);
      const res = await run(CURL, args, { env: cleanEnv(), timeoutMs: 300_000 });
      for (const line of res.stdout.trim().split('\n')) {
        const [code, size] = line.split(' ');
        requests++;
        bytes += Number(size) || 0;
        if (code !== '200' || Number(size) !== 1024 * 1024) bad++;
      }
    }
  };
  await Promise.all(Array.from({ length: streams }, loop));
  const wall = Number(process.hrtime.bigint() - started) / 1e9;
  return { requests, bad, mibPerSec: bytes / wall / 2 ** 20, seconds: wall };
}

/** Sequential 1 KiB GETs on one keep-alive connection; per-request time_total in ms. */
async function latency(proxyPort, url, n) {
  const args = ['-sS', '-x', `http://127.0.0.1:${proxyPort}`, '-w', '%{http_code} %{time_total}\\n'];
  for (let i = 0; i < n; i++) args.push('-o', '/dev/null', url);
  const res = await run(CURL, args, { env: cleanEnv(), timeoutMs: 120_000 });
  const samples = res.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([code]) => code === '200')
    .map(([, t]) => Number(t) * 1000);
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: samples.length,
    p50: median(samples),
    p90: sorted[Math.floor(sorted.length * 0.9)],
    min: sorted[0],
  };
}

async function measure({ dir, origin, stack, av, seconds, clamdPid }) {
  // Distinct random files, so nothing along the way can answer from a cache (clamd runs with
  // DisableCache anyway); more than the run can fetch at the expected rate.
  const uniq = join(av, 'u');
  mkdirSync(uniq, { recursive: true });
  const count = 400;
  for (let i = 0; i < count; i++) writeFileSync(join(uniq, `${i}.bin`), randomBytes(1024 * 1024));
  const urls = Array.from({ length: count }, (_, i) => `http://127.0.0.1:${origin.port}/av/u/${i}.bin`);
  const plain = await startSquid(dir, 'squid-plain');
  const out = {};
  try {
    // warm-up: connections, c-icap children
    await throughput(stack.proxyPort, urls.slice(0, 8), { streams: 4, seconds: 1 });
    const cpu0 = [...stack.pids(), clamdPid].reduce((a, p) => a + safeCpu(p), 0);
    out.icap1m = await throughput(stack.proxyPort, urls, { streams: 4, seconds });
    out.icapCpuMsPerReq =
      ([...stack.pids(), clamdPid].reduce((a, p) => a + safeCpu(p), 0) - cpu0) / out.icap1m.requests;
    out.plain1m = await throughput(plain.port, urls, { streams: 4, seconds: Math.min(seconds, 5) });
    const oneK = `http://127.0.0.1:${origin.port}/av/clean-1k.bin`;
    for (const round of [0, 1, 2]) {
      out[`latIcap${round}`] = await latency(stack.proxyPort, oneK, 200);
      out[`latPlain${round}`] = await latency(plain.port, oneK, 200);
    }
  } finally {
    await plain.stop();
  }
  return out;
}

/** CPU ms of a process and its children; 0 once it is gone. */
function safeCpu(pid) {
  try {
    return cpuMs(pid);
  } catch {
    return 0;
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      measure: { type: 'boolean', default: false },
      'measure-seconds': { type: 'string', default: '10' },
      'keep-temp': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  if (values['keep-temp']) keepTempDirs();
  installCleanupHandlers();
  const dir = makeTempDir('moat-av-smoke-');
  log(`temp dir ${dir}`);

  const origin = await startOrigin(dir);
  const av = writeFiles(join(dir, 'origin', 'www'));
  await makeZip(av);
  const dbDir = join(dir, 'clamav-db');
  writeBenchSignatures(dbDir);
  const clamd = await startClamdForBench(dir, { dbDir });
  log(`clamd: ${clamd.version}`);
  // The signatures work in clamd itself before anything else is judged.
  for (const name of ['eicar.com', 'eicar.zip', 'eicar-1m.bin']) {
    const reply = await clamdCommand(clamd.socket, `SCAN ${join(av, name)}`, { timeoutMs: 30_000 });
    if (!/: Moat\.Test\.\S+ FOUND$/.test(reply)) throw new Error(`clamd does not detect ${name}: ${reply}`);
    log(`clamd SCAN ${name}: ${reply.slice(reply.lastIndexOf(': ') + 2)}`);
  }
  const stack = await startIcapStack(dir, { clamdSocket: clamd.socket, origin });
  log(`${stack.squidVersion}; ${stack.cIcapVersion}; ICAP ${stack.icapUrl}; proxy :${stack.proxyPort}`);

  const rows = await smoke({ dir, origin, stack, av });
  console.log(
    `\n## Squid + c-icap + clamd smoke (${stack.squidVersion}, ${stack.cIcapVersion}, ${clamd.version})\n`,
  );
  printTable(rows);
  const failed = rows.filter((r) => !r.ok).length;

  if (values.measure) {
    const m = await measure({
      dir,
      origin,
      stack,
      av,
      seconds: Number(values['measure-seconds']),
      clamdPid: clamd.pid,
    });
    const lat = (prefix) => median([0, 1, 2].map((i) => m[`${prefix}${i}`].p50));
    const lat90 = (prefix) => median([0, 1, 2].map((i) => m[`${prefix}${i}`].p90));
    console.log('\n## Quick figures (one run, not interleaved)\n');
    console.log(
      `- unique 1 MiB through Squid + c-icap + clamd, 4 curl loops: ${m.icap1m.mibPerSec.toFixed(1)} MiB/s (${m.icap1m.requests} requests in ${m.icap1m.seconds.toFixed(1)} s, ${m.icap1m.bad} not 200/complete; Squid + c-icap + clamd CPU ${m.icapCpuMsPerReq.toFixed(1)} ms per request)`,
    );
    console.log(
      `- the same through a plain Squid: ${m.plain1m.mibPerSec.toFixed(1)} MiB/s (${m.plain1m.requests} requests, ${m.plain1m.bad} bad)`,
    );
    console.log(
      `- 1 KiB GET, sequential keep-alive, median of 3×200: Squid + ICAP p50 ${lat('latIcap').toFixed(2)} ms (p90 ${lat90('latIcap').toFixed(2)}), plain Squid p50 ${lat('latPlain').toFixed(2)} ms (p90 ${lat90('latPlain').toFixed(2)})`,
    );
  }

  await stack.stop();
  await clamd.stop();
  await origin.stop();
  return failed ? 1 : 0;
}

runMain(main, 'icap-smoke.mjs', { help: false });
