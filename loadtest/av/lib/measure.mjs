// loadtest/av: what both of its benchmarks (bench.mjs, scaling.mjs) measure with — the random files
// on the origin, curl as the load client, CPU of process trees from /proc, the throughput
// measurement with Moat's verdict checks, and the report's number formatting.
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processTree } from '../../proxy/lib/load.mjs';
import { run } from '../../proxy/lib/procs.mjs';
import { median } from '../../proxy/lib/report.mjs';
import { cleanEnv } from '../../proxy/lib/stacks.mjs';
import { EICAR } from './icap-stack.mjs';

export const MiB = 2 ** 20;
export const KiB = 1024;

// ---------------------------------------------------------------------------------------------------
// The files: distinct random content (nothing along the way can answer from a cache), generated once.

export const sha256 = (buf) => createHash('sha256').update(buf).digest('hex');

export function writeFiles(www, opts) {
  const av = join(www, 'av');
  const dirs = { u1m: join(av, 'u1m'), u10m: join(av, 'u10m'), s1k: join(av, 's1k') };
  for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true });
  for (let i = 0; i < opts.files1m; i++) writeFileSync(join(dirs.u1m, `${i}.bin`), randomBytes(MiB));
  for (let i = 0; i < opts.files10m; i++) writeFileSync(join(dirs.u10m, `${i}.bin`), randomBytes(10 * MiB));
  for (let i = 0; i < opts.latencySamples; i++) writeFileSync(join(dirs.s1k, `${i}.bin`), randomBytes(KiB));
  writeFileSync(join(av, 'fixed-1m.bin'), randomBytes(MiB));
  writeFileSync(join(av, 'fixed-1k.bin'), randomBytes(KiB));
  writeFileSync(join(av, 'clean-10m.bin'), randomBytes(10 * MiB));
  writeFileSync(join(av, 'eicar.com'), EICAR, 'latin1');
  writeFileSync(join(av, 'eicar-1m.bin'), Buffer.concat([randomBytes(MiB), Buffer.from(EICAR, 'latin1')]));
  return { av, ...dirs };
}

// ---------------------------------------------------------------------------------------------------
// Load: curl. Throughput: one curl --parallel over a list of URLs (connections reused); latency: one
// curl fetching URLs one after another on one keep-alive connection. Every response is checked.

const WRITE_OUT = '%{http_code} %{size_download} %{time_total}\\n';

export async function curlMany(urls, { proxyPort, parallel = 1, size }) {
  const args = ['-sS', '--max-time', '300'];
  args.push(...(proxyPort ? ['-x', `http://127.0.0.1:${proxyPort}`] : ['--noproxy', '*']));
  if (parallel > 1) args.push('--parallel', '--parallel-immediate', '--parallel-max', String(parallel));
  args.push('-w', WRITE_OUT, ...urls.flatMap((url) => ['-o', '/dev/null', url]));
  const started = process.hrtime.bigint();
  const result = await run('curl', args, { env: cleanEnv(), timeoutMs: 900_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const lines = result.stdout.trim().split('\n').filter(Boolean);
  const bad = lines.filter((line) => !line.startsWith(`200 ${size} `));
  if (result.code !== 0 || lines.length !== urls.length || bad.length > 0) {
    throw new Error(
      `curl via ${proxyPort ?? 'direct'}: exit ${result.code}, ${lines.length}/${urls.length} responses, ${bad.length} not "200 ${size}": ${bad
        .slice(0, 3)
        .join('; ')} ${result.stderr.split('\n').slice(0, 3).join(' ')}`,
    );
  }
  return {
    seconds,
    requests: lines.length,
    bytes: lines.length * size,
    times: lines.map((line) => Number(line.split(' ')[2]) * 1000),
  };
}

/** One request, body kept: what the client saw (for the correctness checks). */
export async function fetchOne(proxyPort, url, dir) {
  const out = join(dir, `fetch-${Math.random().toString(36).slice(2)}.out`);
  const args = ['-sS', '-o', out, '-w', '%{http_code} %{size_download}', '--max-time', '120'];
  args.push(...(proxyPort ? ['-x', `http://127.0.0.1:${proxyPort}`] : ['--noproxy', '*']), url);
  const res = await run('curl', args, { env: cleanEnv(), timeoutMs: 130_000 });
  const [status, bytes] = res.stdout.trim().split(' ');
  let body = Buffer.alloc(0);
  try {
    body = readFileSync(out);
    rmSync(out);
  } catch {}
  return { exit: res.code, status: Number(status), bytes: Number(bytes), body, error: res.stderr.trim() };
}

export const percentile = (values, p) => {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor(v.length * p))];
};

/**
 * CPU so far of each group of processes (each pid with its descendants), in ms, user + system and
 * system alone (socket copies, file I/O); a vanished pid counts 0. Same accounting as
 * ../proxy/lib/load.mjs cpuMs, split.
 */
export function cpuOf(groups) {
  const out = {};
  for (const [name, pids] of Object.entries(groups)) {
    let user = 0;
    let sys = 0;
    for (const pid of pids) {
      for (const p of processTree(pid)) {
        try {
          const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
          const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          user += Number(f[11]);
          sys += Number(f[12]);
        } catch {
          // exited meanwhile
        }
      }
    }
    out[name] = (user + sys) * CLK_MS;
    out[`${name}:sys`] = sys * CLK_MS;
  }
  return out;
}

const CLK_MS = 10; // 100 clock ticks per second on Linux x86-64 and arm64

export const cpuDelta = (before, after) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - (before[k] ?? 0)]));

export async function throughput(stack, urls, size, opts, { expect } = {}) {
  const moat = stack.moat;
  if (expect === 'unique') await moat?.forgetVerdicts();
  const v0 = moat ? await moat.verdicts() : undefined;
  const before = cpuOf(stack.cpuGroups());
  const r = await curlMany(urls, { proxyPort: stack.port, parallel: opts.parallel, size });
  const cpu = cpuDelta(before, cpuOf(stack.cpuGroups()));
  const mib = r.bytes / MiB;
  const total = Object.entries(cpu).filter(([k]) => !k.endsWith(':sys'));
  const out = {
    mibPerSec: mib / r.seconds,
    seconds: r.seconds,
    requests: r.requests,
    cpuMsPerMiB: total.reduce((a, [, v]) => a + v, 0) / mib,
    cpuMsPerMiBBy: Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, v / mib])),
  };
  if (moat) {
    const v1 = await moat.verdicts();
    out.verdicts = {
      scanned: v1.scanned - v0.scanned,
      cached: v1.cached - v0.cached,
      error: v1.error - v0.error,
    };
    if (out.verdicts.error > 0) throw new Error(`moat-av: ${out.verdicts.error} scans without a verdict`);
    if (expect === 'unique' && (out.verdicts.scanned !== r.requests || out.verdicts.cached !== 0))
      throw new Error(
        `moat-av unique files: expected ${r.requests} scans, got ${JSON.stringify(out.verdicts)}`,
      );
    if (expect === 'cached' && out.verdicts.cached !== r.requests)
      throw new Error(
        `moat-av repeated file: expected ${r.requests} cache hits, got ${JSON.stringify(out.verdicts)}`,
      );
  }
  return out;
}

// Report

export const fmt = (x, digits) => {
  if (x === undefined || Number.isNaN(x)) return '—';
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

export function stat(values) {
  const v = values.filter((x) => Number.isFinite(x));
  if (!v.length) return undefined;
  return { median: median(v), min: Math.min(...v), max: Math.max(...v), n: v.length };
}

export const cell = (s) => (s ? `${fmt(s.median)} (${fmt(s.min)}–${fmt(s.max)})` : '—');
export const ratio = (a, b) => (a && b?.median ? `**${fmt(a.median / b.median, 2)}**` : '—');
