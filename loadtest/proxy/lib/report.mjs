// Medians, ratios, the markdown table, the access-log check, and where and how a run is recorded.
import { createReadStream, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { run } from './procs.mjs';

const RESULTS_DIR = fileURLToPath(new URL('../../results', import.meta.url));

/** Where a run's results go: `out`, else loadtest/results/<name>-<date>.json (-2, -3… when taken). */
export function resultsPath(out, name) {
  if (out) return resolve(out);
  mkdirSync(RESULTS_DIR, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  let file = join(RESULTS_DIR, `${name}-${date}.json`);
  for (let i = 2; existsSync(file); i++) file = join(RESULTS_DIR, `${name}-${date}-${i}.json`);
  return file;
}

/** When, at which commit (noting uncommitted services/ or packages/) and on what machine a run was made. */
export async function runIdentity(repo) {
  const commit = (await run('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'])).stdout.trim();
  const dirty = (
    await run('git', ['-C', repo, 'status', '--porcelain', 'services', 'packages'])
  ).stdout.trim();
  const cpu = os.cpus();
  return {
    date: new Date().toISOString(),
    commit: `commit ${commit}${dirty ? ' (with uncommitted changes in services/ or packages/)' : ''}`,
    machine: `${cpu.length} × ${cpu[0]?.model.trim()}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node ${process.version}`,
  };
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const fmt = (x, digits) => {
  if (x === undefined) return '—';
  const d = digits ?? (Math.abs(x) >= 100 ? 0 : Math.abs(x) >= 10 ? 1 : 2);
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
};

/**
 * Summarises runs into rows: one per metric, with the median (and min–max) per stack and the ratio
 * candidate/baseline. `metrics` describe how to read a value out of a run.
 */
export function summarise(runs, metrics, { candidate, baseline }) {
  const rows = [];
  for (const m of metrics) {
    const per = {};
    for (const stack of [candidate, baseline, 'origin']) {
      const values = runs
        .filter((r) => r.test === m.test && r.stack === stack && r.variant === m.variant)
        .map(m.value);
      if (values.length)
        per[stack] = {
          median: median(values),
          min: Math.min(...values),
          max: Math.max(...values),
          n: values.length,
        };
    }
    if (!per[candidate] && !per[baseline]) continue;
    if (Object.values(per).every((v) => !v.median)) continue; // e.g. NATS + Redis CPU with two Squids
    const c = per[candidate]?.median;
    const b = per[baseline]?.median;
    rows.push({
      metric: m.label,
      key: m.key,
      unit: m.unit,
      better: m.better,
      stacks: per,
      ratio: c !== undefined && b ? c / b : undefined,
    });
  }
  return rows;
}

export function markdownTable(rows, { candidate, baseline, titles }) {
  const t = (s) => titles[s] ?? s;
  const cell = (v) => (v ? `${fmt(v.median)} (${fmt(v.min)}–${fmt(v.max)})` : '—');
  const lines = [
    `| metric | ${t(baseline)} | ${t(candidate)} | ${t(candidate)}/${t(baseline)} | origin direct |`,
    '|---|--:|--:|--:|--:|',
  ];
  for (const r of rows) {
    const arrow = r.better === 'higher' ? '↑' : '↓';
    lines.push(
      `| ${r.metric} (${r.unit}, ${arrow} better) | ${cell(r.stacks[baseline])} | ${cell(r.stacks[candidate])} | ${
        r.ratio === undefined ? '—' : `**${fmt(r.ratio, 2)}**`
      } | ${r.stacks.origin?.median !== undefined ? fmt(r.stacks.origin.median) : ''} |`,
    );
  }
  lines.push(
    '',
    'Cells: median (min–max) over the rounds. Ratio of medians; "↓ better" rows: below 1 means less.',
  );
  return lines.join('\n');
}

/**
 * Reads an access log (Squid native or Moat JSON) and counts entries by status, so the run can
 * confirm every response was a 200.
 */
export async function scanAccessLog(file, format) {
  // `aborted`: the client went away before a response (Squid logs status 000): wrk stopping with
  // requests in flight at the end of every run, at most one per connection.
  const counts = { entries: 0, ok: 0, aborted: 0, unparsed: 0, byStatus: {} };
  let stream;
  try {
    stream = createReadStream(file);
    const rl = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    for await (const line of rl) {
      if (!line.trim()) continue;
      counts.entries++;
      let status;
      if (format === 'squid') status = /^\S+\s+\d+\s+\S+\s+\S+\/(\d{3})\s/.exec(line)?.[1];
      else status = /"(?:status|statusCode)"\s*:\s*(\d{1,3})\b/.exec(line)?.[1]?.padStart(3, '0');
      if (!status) {
        counts.unparsed++;
        if (counts.unparsed <= 3)
          counts.unparsedSample = [...(counts.unparsedSample ?? []), line.slice(0, 300)];
        continue;
      }
      counts.byStatus[status] = (counts.byStatus[status] ?? 0) + 1;
      if (status === '200') counts.ok++;
      else if (status === '000' || status === '499') counts.aborted++;
    }
  } catch (err) {
    return { ...counts, error: err.message };
  } finally {
    stream?.destroy();
  }
  return counts;
}
