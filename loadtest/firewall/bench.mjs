#!/usr/bin/env node
// Moat's firewall against nft by hand: time to apply a large policy, and forwarding through the
// gateway namespace with Moat's ruleset vs none. A benchmark, not a test: run it by hand as root.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const HELP = `Usage: sudo node loadtest/firewall/bench.mjs [options]

Applies Moat's firewall (services/firewall, built) in network namespaces of its own and compares:
  rules     a policy with --rules security rules: Moat (render + apply) vs nft -f of the same script
  set       a --set-size address list: first apply, a rule change with the list unchanged, a
            restart, and nft -f of the same script
  forward   iperf3 throughput and TCP round trips through the gateway, Moat's ruleset vs no ruleset

  --only LIST        rules,set,forward (default all)
  --rounds N         runs per measurement; medians (default 3)
  --rules N          security rules (default 10000)
  --set-size N       list entries (default 1000000)
  --json             results as JSON
  -h, --help         this text`;

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string', default: 'rules,set,forward' },
    rounds: { type: 'string', default: '3' },
    rules: { type: 'string', default: '10000' },
    'set-size': { type: 'string', default: '1000000' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (opts.help) {
  console.log(HELP);
  process.exit(0);
}
if (process.getuid?.() !== 0) {
  console.error('bench: needs root (network namespaces and nftables); run it with sudo');
  process.exit(2);
}
const root = new URL('../../', import.meta.url).pathname;
const load = (path) => import(join(root, path));
let firewallMod, policyMod, topology, policies;
try {
  firewallMod = await load('services/firewall/dist/firewall.js');
  policyMod = await load('packages/policy/dist/index.js');
  topology = await load('services/firewall/dist/testing/topology.js');
  policies = await load('services/firewall/dist/testing/policies.js');
} catch (err) {
  console.error(`bench: the firewall is not built (${err.message}); run npm run build first`);
  process.exit(2);
}
const { Firewall } = firewallMod;
const { renderRuleset } = await load('services/firewall/dist/render/ruleset.js');
const { NS, ADDR } = topology;
const rounds = Number(opts.rounds);
const only = new Set(opts.only.split(','));
const dir = mkdtempSync(join(tmpdir(), 'moat-fw-bench-'));
const inGw = ['ip', 'netns', 'exec', NS.gw];
const nftOptions = { command: [...inGw, 'nft'], timeoutMs: 900_000 };
const results = {};
const say = (text) => process.stderr.write(`[bench] ${text}\n`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (f) => {
  const t = performance.now();
  f();
  return performance.now() - t;
};
const nftByHand = (file) => ms(() => execFileSync(inGw[0], [...inGw.slice(1), 'nft', '-f', file]));
const deleteTable = () =>
  execFileSync(inGw[0], [...inGw.slice(1), 'nft', 'delete', 'table', 'inet', 'moat'], { stdio: 'ignore' });
const parse = (text) => {
  const r = policyMod.parsePolicyText(text, 'bench.yaml');
  if (!r.ok) throw new Error(JSON.stringify(r.violations.slice(0, 3)));
  return r.policy;
};

/** A policy with n rules, each permitting tcp/8080 to its own /32; the rule list is last, for appending. */
function policyText(n) {
  const addresses = [];
  const rules = [];
  for (let i = 0; i < n; i++) {
    addresses.push(`    h${i}: 100.${64 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    rules.push(
      `  - { name: r${i}, fromZones: lan, toZones: wan, source: any, destination: h${i}, service: web-8080, action: permit, counter: true }`,
    );
  }
  return `apiVersion: moat/v1
kind: Policy
metadata: { name: bench }
zones:
  lan: { interfaces: [lan0] }
  wan: { interfaces: [wan0] }
objects:
  addresses:
${addresses.join('\n')}
  services:
    web-8080: { protocol: tcp, ports: 8080 }
nat:
  source:
    - { name: masquerade, fromZones: lan, egressInterface: wan0, translation: masquerade }
securityRules:
${rules.join('\n')}
`;
}

async function benchRules() {
  const n = Number(opts.rules);
  say(`rules: ${n} security rules`);
  const policy = parse(policyText(n));
  const moat = [];
  const byHand = [];
  const file = join(dir, 'rules.nft');
  writeFileSync(file, renderRuleset(policy).script);
  for (let r = 0; r < rounds; r++) {
    const fw = new Firewall({ nft: nftOptions });
    const o = await fw.apply(policy);
    moat.push(o.renderMs + o.applyMs);
    deleteTable();
    byHand.push(nftByHand(file));
    deleteTable();
    say(
      `  round ${r + 1}: moat ${Math.round(moat.at(-1))} ms (render ${Math.round(o.renderMs)}), nft -f ${Math.round(byHand.at(-1))} ms, ${o.ruleCount} nft rules`,
    );
  }
  results.rules = {
    policyRules: n,
    moatMs: median(moat),
    nftByHandMs: median(byHand),
    ratio: median(moat) / median(byHand),
  };
}

async function benchSet() {
  const size = Number(opts['set-size']);
  say(`set: a ${size}-entry list`);
  const list = policies.writeBlocklist(dir, size, []);
  const rows = { firstApply: [], ruleChange: [], restart: [], nftByHand: [] };
  const file = join(dir, 'set.nft');
  writeFileSync(
    file,
    renderRuleset(policies.testPolicy(list), { readFile: (p) => readFileSync(p, 'utf8') }).script,
  );
  const extra =
    '  - { name: allow-9090, fromZones: lan, toZones: wan, source: any, destination: any, service: tcp-9090, action: permit }';
  for (let r = 0; r < rounds; r++) {
    const fw = new Firewall({ nft: nftOptions });
    let o = await fw.apply(policies.testPolicy(list));
    rows.firstApply.push(o.renderMs + o.applyMs);
    o = await fw.apply(policies.testPolicy(list, 'changed', extra));
    rows.ruleChange.push(o.renderMs + o.applyMs);
    o = await new Firewall({ nft: nftOptions }).apply(policies.testPolicy(list));
    rows.restart.push(o.renderMs + o.applyMs);
    deleteTable();
    rows.nftByHand.push(nftByHand(file));
    deleteTable();
    say(
      `  round ${r + 1}: ${Object.entries(rows)
        .map(([k, v]) => `${k} ${Math.round(v.at(-1))} ms`)
        .join(', ')}`,
    );
  }
  results.set = {
    entries: size,
    ...Object.fromEntries(Object.entries(rows).map(([k, v]) => [`${k}Ms`, median(v)])),
  };
}

function run(argv, timeoutMs = 60_000) {
  return execFileSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: timeoutMs });
}

/** TCP round trips (1-byte request, 1-byte reply) on one connection: p50 and p99 in µs. */
function roundTrips(count = 5000) {
  const server = spawn('ip', [
    'netns',
    'exec',
    NS.wan,
    process.execPath,
    '-e',
    `require('net').createServer((s) => s.on('data', (d) => s.write(d))).listen(7007, '${ADDR.server}', () => console.log('up'))`,
  ]);
  execFileSync('sleep', ['0.5']);
  try {
    const out = run([
      'ip',
      'netns',
      'exec',
      NS.lan,
      process.execPath,
      '-e',
      `
      const s = require('net').connect(7007, '${ADDR.server}', () => {
        const times = []; let t = 0;
        const next = () => { if (times.length === ${count}) { s.end(); times.sort((a, b) => a - b); console.log(JSON.stringify({ p50: times[times.length >> 1], p99: times[Math.floor(times.length * 0.99)] })); return; } t = process.hrtime.bigint(); s.write('x'); };
        s.setNoDelay(true); s.on('data', () => { times.push(Number(process.hrtime.bigint() - t) / 1000); next(); }); next();
      });`,
    ]);
    return JSON.parse(out);
  } finally {
    server.kill();
  }
}

function iperf() {
  const server = spawn('ip', ['netns', 'exec', NS.wan, 'iperf3', '-s', '-1', '-B', ADDR.server]);
  execFileSync('sleep', ['0.5']);
  try {
    const out = JSON.parse(
      run(['ip', 'netns', 'exec', NS.lan, 'iperf3', '-c', ADDR.server, '-t', '5', '-J']),
    );
    return out.end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill();
  }
}

async function benchForward() {
  say(
    'forward: iperf3 and TCP round trips, no ruleset vs Moat’s ruleset (1,000 rules before the matching one)',
  );
  try {
    run(['iperf3', '--version']);
  } catch {
    say('  SKIPPED: iperf3 is not installed (apt-get install iperf3)');
    return;
  }
  // the baseline has no NAT: give the server side a route back
  run(['ip', '-n', NS.wan, 'route', 'replace', '10.71.1.0/24', 'via', ADDR.gwWan]);
  const rows = { none: { mbps: [], p50: [], p99: [] }, moat: { mbps: [], p50: [], p99: [] } };
  // a permit for the benchmark's own traffic, placed last so every flow walks all 1,000 rules
  const moatPolicy = parse(
    `${policyText(1000)}  - { name: bench-traffic, fromZones: lan, toZones: wan, source: any, destination: any, service: any, action: permit }\n`,
  );
  for (let r = 0; r < rounds; r++) {
    for (const kind of r % 2 ? ['moat', 'none'] : ['none', 'moat']) {
      const fw = new Firewall({ nft: nftOptions });
      if (kind === 'moat') await fw.apply(moatPolicy);
      else {
        try {
          deleteTable();
        } catch {}
      }
      const mbps = iperf();
      const rtt = roundTrips();
      rows[kind].mbps.push(mbps);
      rows[kind].p50.push(rtt.p50);
      rows[kind].p99.push(rtt.p99);
      say(
        `  round ${r + 1} ${kind}: ${Math.round(mbps)} Mbit/s, round trip p50 ${Math.round(rtt.p50)} µs p99 ${Math.round(rtt.p99)} µs`,
      );
    }
  }
  try {
    deleteTable();
  } catch {}
  const m = (k, f) => median(rows[k][f]);
  results.forward = {
    noneMbps: m('none', 'mbps'),
    moatMbps: m('moat', 'mbps'),
    throughputRatio: m('moat', 'mbps') / m('none', 'mbps'),
    noneP50Us: m('none', 'p50'),
    moatP50Us: m('moat', 'p50'),
    noneP99Us: m('none', 'p99'),
    moatP99Us: m('moat', 'p99'),
  };
}

const cleanup = async () => {
  await topology.removeTopology().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
try {
  await topology.createTopology();
  if (only.has('rules')) await benchRules();
  if (only.has('set')) await benchSet();
  if (only.has('forward')) await benchForward();
} finally {
  await cleanup();
}
if (opts.json) console.log(JSON.stringify(results, null, 2));
else {
  const f = (x) => (x === undefined ? '—' : x >= 100 ? Math.round(x).toLocaleString('en') : x.toFixed(2));
  const lines = ['| measurement | Moat | reference | Moat / reference |', '|---|--:|--:|--:|'];
  if (results.rules)
    lines.push(
      `| apply ${results.rules.policyRules.toLocaleString('en')} rules (ms) | ${f(results.rules.moatMs)} | ${f(results.rules.nftByHandMs)} (nft -f) | ${f(results.rules.ratio)} |`,
    );
  if (results.set) {
    const s = results.set;
    lines.push(
      `| first apply, ${s.entries.toLocaleString('en')}-entry list (ms) | ${f(s.firstApplyMs)} | ${f(s.nftByHandMs)} (nft -f) | ${f(s.firstApplyMs / s.nftByHandMs)} |`,
    );
    lines.push(`| rule change, list unchanged (ms) | ${f(s.ruleChangeMs)} | | |`);
    lines.push(`| restart, list unchanged (ms) | ${f(s.restartMs)} | | |`);
  }
  if (results.forward) {
    const w = results.forward;
    lines.push(
      `| forwarding throughput (Mbit/s) | ${f(w.moatMbps)} | ${f(w.noneMbps)} (no ruleset) | ${f(w.throughputRatio)} |`,
    );
    lines.push(
      `| TCP round trip p50 / p99 (µs) | ${f(w.moatP50Us)} / ${f(w.moatP99Us)} | ${f(w.noneP50Us)} / ${f(w.noneP99Us)} (no ruleset) | ${f(w.moatP50Us / w.noneP50Us)} / ${f(w.moatP99Us / w.noneP99Us)} |`,
    );
  }
  console.log(lines.join('\n'));
}
