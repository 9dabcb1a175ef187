// Benchmark for @moat/urlfilter at UT1 scale: generates a synthetic UT1 tree with 2,000,000
// domain entries in a temp dir, then, in a fresh Node process (so memory numbers are not
// polluted by the generator), builds it and measures build time, memory and lookup rate.
//
//   npx tsc -p packages/urlfilter/tsconfig.json && node loadtest/urlfilter/bench.mjs
//   options: --entries N (2000000)  --lookups N per set (200000)  --runs N (7)  --keep
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildCategorizer } from '../../packages/urlfilter/dist/index.js';

const { values: args } = parseArgs({
  options: {
    entries: { type: 'string', default: '2000000' },
    lookups: { type: 'string', default: '200000' },
    runs: { type: 'string', default: '7' },
    keep: { type: 'boolean', default: false },
    // internal: the measuring child process
    measure: { type: 'string' },
  },
});

// share of the entries per category, roughly UT1's proportions
const CATEGORIES = {
  adult: 0.55,
  publicite: 0.1,
  malware: 0.1,
  phishing: 0.08,
  gambling: 0.05,
  games: 0.05,
  social_networks: 0.04,
  shopping: 0.03,
};
const TLDS = ['com', 'com', 'com', 'net', 'org', 'fr', 'de', 'ru', 'info', 'co.uk', 'io', 'xyz', 'biz', 'nl'];
const RELOADS = 5;
const SUBDOMAINS = ['www', 'm', 'cdn', 'img', 'blog', 'shop', 'static', 'video'];
const SYLLABLES =
  'ba be bi bo bu ca ce co da de di do fa fe fi ga go ha he ho ka ke ki ko la le li lo ma me mi mo'
    .concat(' na ne ni no pa pe pi po ra re ri ro sa se si so ta te ti to va ve vi vo za zo')
    .split(' ');

// ------------------------------------------------------------------------------------------ generating

async function generateAndMeasure() {
  const root = mkdtempSync(join(tmpdir(), 'moat-urlfilter-bench-'));
  try {
    const started = performance.now();
    const listed = writeTree(root, Number(args.entries));
    writeFileSync(join(root, 'lookups.json'), JSON.stringify(lookupHosts(listed, Number(args.lookups))));
    console.log(
      `generated ${listed.length} domains in ${Object.keys(CATEGORIES).length} categories ` +
        `(${Math.round(performance.now() - started)} ms)`,
    );
    const script = fileURLToPath(import.meta.url);
    const child = spawnSync(
      process.execPath,
      ['--expose-gc', script, '--measure', root, '--runs', args.runs],
      {
        stdio: 'inherit',
      },
    );
    if (child.status !== 0) process.exitCode = child.status ?? 1;
  } finally {
    if (args.keep) console.log(`kept ${root}`);
    else rmSync(root, { recursive: true, force: true });
  }
}

// a seeded generator, so every run measures the same names
let seed = 0x2545f491;
function random() {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];
const word = () => pick(SYLLABLES) + pick(SYLLABLES) + (random() < 0.5 ? pick(SYLLABLES) : '');

/** A unique listed domain (the index in base 36 keeps names distinct); 30% with a host label. */
function listedDomain(index) {
  const name = `${word()}${index.toString(36)}${random() < 0.2 ? `-${word()}` : ''}.${pick(TLDS)}`;
  return random() < 0.3 ? `${pick(SUBDOMAINS)}.${name}` : name;
}

/** Writes <root>/<category>/domains (and a small urls list); returns every listed domain. */
function writeTree(root, entries) {
  const all = [];
  for (const [category, share] of Object.entries(CATEGORIES)) {
    const lines = [];
    for (let i = 0; i < Math.round(entries * share) && all.length < entries; i++) {
      const domain = listedDomain(all.length);
      all.push(domain);
      // as real lists have some: uppercase, a trailing dot
      lines.push(i % 97 === 0 ? `${domain.toUpperCase()}.` : domain);
    }
    mkdirSync(join(root, category));
    writeFileSync(join(root, category, 'domains'), `# synthetic ${category}\n${lines.join('\n')}\n`);
    const urls = lines.slice(0, 1000).map((domain, i) => `${domain}/path/${i.toString(36)}`);
    writeFileSync(join(root, category, 'urls'), `${urls.join('\n')}\n`);
  }
  return all;
}

/**
 * Four-label hosts: hits are listed domains with labels in front; misses are never listed; mixed
 * alternates them; hot cycles through 1,000 of the mixed ones.
 */
function lookupHosts(listed, count) {
  const hits = [];
  const misses = [];
  for (let i = 0; i < count; i++) {
    const domain = listed[Math.floor(random() * listed.length)];
    const labels = domain.split('.').length;
    hits.push(labels >= 4 ? domain : `${['a', 'www', 'cdn'].slice(0, 4 - labels).join('.')}.${domain}`);
    // "--" never occurs in listed names
    misses.push(`www.${word()}.${word()}--${i.toString(36)}.${pick(['com', 'net', 'org'])}`);
  }
  const mixed = hits.map((host, i) => (i % 2 === 0 ? host : misses[i]));
  // real traffic repeats hosts: 1,000 distinct ones, so the tables' lines for them stay cached
  const hot = mixed.map((_, i) => mixed[i % 1000]);
  return { hits, misses, mixed, hot };
}

// ------------------------------------------------------------------------------------------ measuring

async function measure(root) {
  const runs = Number(args.runs);
  // JSON.parse gives flat strings, as hosts from the HTTP parser are
  const lookups = JSON.parse(readFileSync(join(root, 'lookups.json'), 'utf8'));
  const before = memory();

  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const mainThreadCpu = process.threadCpuUsage();
  const started = performance.now();
  const categories = Object.keys(CATEGORIES).map((category) => ({
    name: category,
    source: root,
    categories: [category],
  }));
  let categorizer = await buildCategorizer(categories);
  const buildMs = performance.now() - started;
  const mainThreadUsed = process.threadCpuUsage(mainThreadCpu);
  delay.disable();
  const after = memory();

  const { stats } = categorizer;
  console.log(
    `build: ${Math.round(buildMs)} ms for ${stats.entries} entries (${stats.domainEntries} domains, ` +
      `${stats.urlEntries} URL prefixes, ${stats.skippedLines} lines skipped)`,
  );
  console.log(
    `event loop during the build: main thread CPU ${ms(mainThreadUsed.user + mainThreadUsed.system)} ms; ` +
      `timer delay p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms ` +
      '(includes waiting for a CPU)',
  );
  console.log(
    `tables: stats.bytes ${mb(stats.bytes)} (${(stats.bytes / stats.entries).toFixed(1)} bytes/entry)`,
  );
  console.log(
    `process: rss ${mb(before.rss)} -> ${mb(after.rss)} (+${mb(after.rss - before.rss)}), ` +
      `heapUsed ${mb(before.heapUsed)} -> ${mb(after.heapUsed)}`,
  );

  // reloads: each build replaces the last; memory should level off, not grow per reload
  let current = categorizer;
  categorizer = undefined;
  const rss = [];
  for (let reload = 0; reload < RELOADS; reload++) {
    current = await buildCategorizer(categories);
    rss.push(mb(memory().rss));
  }
  console.log(`rss after each of ${RELOADS} more builds (reloads): ${rss.join(', ')}`);
  categorizer = current;

  // let the JIT settle before measuring
  lookupRate(categorizer, lookups.mixed.slice(0, 20000), 3);
  for (const [label, hosts] of Object.entries(lookups)) {
    const { wallNs, cpuNs, matched } = lookupRate(categorizer, hosts, runs);
    console.log(
      `lookups ${label.padEnd(6)}: ${perSecond(wallNs)}/s (${Math.round(wallNs)} ns) wall, ` +
        `${perSecond(cpuNs)}/s (${Math.round(cpuNs)} ns) CPU; median of ${runs} runs of ${hosts.length}, ` +
        `${matched} matched`,
    );
  }
  console.log(`machine: ${machineNotes()}`);
  console.log(
    `load average ${loadavg()
      .map((load) => load.toFixed(1))
      .join(' ')} on ${availableParallelism()} CPUs`,
  );
}

/** Median ns per lookup over the runs, by wall clock and by this process's CPU time. */
function lookupRate(categorizer, hosts, runs) {
  const wall = [];
  const cpu = [];
  let matched = 0;
  for (let run = 0; run < runs; run++) {
    matched = 0;
    const started = process.hrtime.bigint();
    const startedCpu = process.cpuUsage();
    for (let i = 0; i < hosts.length; i++) if (categorizer.categorize(hosts[i], '/').length > 0) matched++;
    const usedCpu = process.cpuUsage(startedCpu);
    wall.push(Number(process.hrtime.bigint() - started) / hosts.length);
    cpu.push(((usedCpu.user + usedCpu.system) * 1000) / hosts.length);
  }
  return { wallNs: median(wall), cpuNs: median(cpu), matched };
}

/** How fast this machine is at what lookups do: a tight loop, and a random read from DRAM. */
function machineNotes() {
  let x = 0;
  let started = process.hrtime.bigint();
  for (let i = 0; i < 1e8; i++) x = (x + i * 7) | 0;
  const loopNs = Number(process.hrtime.bigint() - started) / 1e8;
  // one random cycle through 64 MB (Sattolo's shuffle), so every read depends on the last
  const size = 16 * 1048576;
  const next = new Uint32Array(size);
  for (let i = 0; i < size; i++) next[i] = i;
  for (let i = size - 1; i > 0; i--) {
    const j = Math.floor(random() * i);
    [next[i], next[j]] = [next[j], next[i]];
  }
  let at = x & 0;
  started = process.hrtime.bigint();
  for (let i = 0; i < 1e6; i++) at = next[at];
  const readNs = Number(process.hrtime.bigint() - started) / 1e6;
  return `${loopNs.toFixed(2)} ns per simple loop step, ${readNs.toFixed(0)} ns per dependent random read in 64 MB${at < 0 ? '' : ''}`;
}

function memory() {
  globalThis.gc?.();
  const { heapUsed, rss } = process.memoryUsage();
  return { heapUsed, rss };
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
const ms = (micros) => (micros / 1000).toFixed(1);
const perSecond = (ns) => Math.round(1e9 / ns).toLocaleString('en');

if (args.measure === undefined) await generateAndMeasure();
else await measure(args.measure);
