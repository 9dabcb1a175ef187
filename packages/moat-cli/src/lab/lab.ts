import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { CliError } from '../errors.js';
import { distFile } from '../paths.js';
import { describeCheck, type ReadyCheck, waitUntil } from '../probes.js';
import { tailFile } from '../proc.js';
import type { Reporter } from '../report.js';
import { run } from '../run.js';
import { ensureServiceTls } from '../service-tls.js';
import type { ServiceDefinition } from '../services.js';
import { BAD_TLS_VARIANTS, ensureBadTlsCertificates } from './bad-tls.js';
import { labHostsFile, removeLabHosts, writeLabHosts } from './hosts.js';
import { deleteNamespace, execInNamespaceArgv, listInterfaces, listNamespaces } from './netns.js';
import { LAB_PORTS, labProcessSpecs, unprivilegedUid } from './processes.js';
import {
  emptyState,
  ensureStateDirs,
  LAB_STATE_DIR,
  type LabProcessRecord,
  type LabState,
  labPaths,
  readState,
  removeStateDir,
  writeState,
} from './state.js';
import {
  isRecordRunning,
  killNamespaceProcesses,
  type LabProcessSpec,
  startDetachedInNamespace,
  stopRecordedProcess,
} from './supervise.js';
import { ensureLabCertificates } from './tls.js';
import {
  ensureTopology,
  LAB_ADDRESSES,
  LAB_HOSTNAMES,
  LAB_NAMESPACES,
  type LabNamespace,
  type LabRole,
} from './topology.js';

/** `moat lab up|down|status|exec`: orchestration only; the pieces live in topology/supervise/netns. */

export interface LabUpOptions {
  services: readonly ServiceDefinition[];
  readyTimeoutMs: number;
  reporter: Reporter;
  stateRoot?: string;
}

export async function labUp(options: LabUpOptions): Promise<LabState> {
  const { reporter } = options;
  const root = options.stateRoot ?? LAB_STATE_DIR;
  ensureStateDirs(root);

  reporter.step('network: namespaces, veth links, addresses, routes');
  const created = await ensureTopology();
  const what = [...created.createdNamespaces, ...created.createdLinks];
  reporter.ok(`network ready${what.length ? ` (created ${what.join(', ')})` : ' (already in place)'}`);

  const state = readState(root) ?? emptyState({ ...LAB_ADDRESSES });
  writeLabNames(state, reporter);
  const certificates = await ensureLabCertificates(root);
  reporter.ok(
    certificates === 'kept'
      ? 'lab CA and origin certificate already in place'
      : `lab CA and origin certificate ${certificates} (trust ${labPaths(root).caCert})`,
  );
  const badTls = await ensureBadTlsCertificates(root);
  // the lab runs the proxy as nobody: its client key must be readable by it, and by it alone
  await ensureServiceTls(labPaths(root).serviceTls, { proxyUid: unprivilegedUid() });
  reporter.ok(
    `bad-certificate servers' certificates ${badTls === 'kept' ? 'already in place' : 'issued'} (${BAD_TLS_VARIANTS.length} variants, <variant>.tls.test)`,
  );
  writeState(state, root);
  for (const spec of labProcessSpecs(options.services, root)) {
    const record = ensureProcess(spec, state, root, reporter);
    await waitReady(record, options.readyTimeoutMs, reporter);
  }

  await checkLanReachesOrigin(reporter, root);
  return state;
}

/** /etc/netns/<ns>/hosts for every lab namespace; remembers which directories it had to create. */
function writeLabNames(state: LabState, reporter: Reporter): void {
  const hosts = writeLabHosts();
  state.createdEtcDirs = [...new Set([...(state.createdEtcDirs ?? []), ...hosts.createdDirs])];
  for (const ns of hosts.foreign)
    reporter.warn(
      `${labHostsFile(ns)} was not written by moat: left as it is, lab names may not resolve in ${ns}`,
    );
  reporter.ok(`lab names (${LAB_HOSTNAMES[0]} …) resolve to the origin in every lab namespace`);
}

/** Starts `spec` unless our recorded process for it is still alive; keeps state.json current. */
function ensureProcess(
  spec: LabProcessSpec,
  state: LabState,
  root: string,
  reporter: Reporter,
): LabProcessRecord {
  const index = state.processes.findIndex((p) => p.name === spec.name);
  const existing = state.processes[index];
  if (existing && isRecordRunning(existing)) {
    reporter.step(`${spec.name}: already running (pid ${existing.pid}) in ${existing.namespace}`);
    return existing;
  }
  const record = startDetachedInNamespace(spec, labPaths(root).logFile(spec.name));
  if (existing) {
    state.processes[index] = record;
  } else {
    state.processes.push(record);
  }
  writeState(state, root);
  reporter.step(`${spec.name}: started (pid ${record.pid}) in ${spec.namespace}, log ${record.log}`);
  return record;
}

async function waitReady(record: LabProcessRecord, timeoutMs: number, reporter: Reporter): Promise<void> {
  const started = Date.now();
  const ready = await waitUntil(() => probeInNamespace(record.namespace, record.ready), {
    timeoutMs,
    intervalMs: 250,
    giveUp: () => !isRecordRunning(record),
  });
  if (ready) {
    reporter.ok(`${record.name}: ready in ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return;
  }
  const reason = isRecordRunning(record)
    ? `not ready after ${timeoutMs / 1000}s (${describeCheck(record.ready)} in ${record.namespace})`
    : 'exited during start-up';
  const tail = tailFile(record.log);
  reporter.fail(`${record.name}: ${reason}`);
  throw new CliError(
    `${record.name} ${reason}; see ${record.log}${tail ? `\n--- last lines ---\n${tail}` : ''}`,
    {
      hint: 'fix the cause, then run `moat lab up` again (it keeps what already works), or `moat lab down` to start over',
    },
  );
}

/** One readiness probe, run by node inside the namespace (127.0.0.1 there is not ours). */
export async function probeInNamespace(ns: LabNamespace, check: ReadyCheck): Promise<boolean> {
  const [ip, ...args] = execInNamespaceArgv(ns, [
    process.execPath,
    distFile('lab/probe-main.js'),
    JSON.stringify(check),
  ]);
  try {
    await run(ip, args, { timeoutMs: 5_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * The end-to-end paths: a client in moat-lan fetches from the origin, routed through moat-gw,
 * over HTTP by address and over HTTPS by lab name (hosts file + lab CA).
 */
async function checkLanReachesOrigin(reporter: Reporter, root: string): Promise<void> {
  await checkLanReaches(reporter, `http://${LAB_ADDRESSES.origin}:${LAB_PORTS.origin}/healthz`);
  await checkLanReaches(reporter, `https://${LAB_HOSTNAMES[0]}:${LAB_PORTS.originTls}/healthz`, [
    '--cacert',
    labPaths(root).caCert,
  ]);
}

async function checkLanReaches(
  reporter: Reporter,
  url: string,
  curlArgs: readonly string[] = [],
): Promise<void> {
  let last = '';
  const ok = await waitUntil(
    async () => {
      const result = await curlFrom(LAB_NAMESPACES.lan, url, curlArgs);
      last = result.detail;
      return result.ok;
    },
    { timeoutMs: 10_000, intervalMs: 500 },
  );
  if (!ok) {
    reporter.fail(`moat-lan → ${url} through moat-gw: ${last}`);
    throw new CliError(`the LAN client cannot reach the origin through the gateway (${last})`, {
      hint: 'inspect with `moat lab status` and `moat lab exec gw -- ip route`; `moat lab down && moat lab up` rebuilds it',
    });
  }
  reporter.ok(`moat-lan (${LAB_ADDRESSES.lanClient}) reaches origin ${url} through moat-gw`);
}

/** GET `url` with curl inside `ns`; ok on HTTP 200. `curlArgs` go before the URL (e.g. --cacert). */
export async function curlFrom(
  ns: LabNamespace,
  url: string,
  curlArgs: readonly string[] = [],
): Promise<{ ok: boolean; detail: string }> {
  const [ip, ...args] = execInNamespaceArgv(ns, [
    'curl',
    '-sS',
    '-m',
    '5',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    ...curlArgs,
    url,
  ]);
  try {
    const { stdout } = await run(ip, args, { timeoutMs: 10_000 });
    return { ok: stdout.trim() === '200', detail: `HTTP ${stdout.trim()}` };
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

export interface LabDownOptions {
  stopTimeoutMs: number;
  reporter: Reporter;
  stateRoot?: string;
}

/** Stops what `up` started (newest first), sweeps the namespaces, deletes them and the state dir. */
export async function labDown(options: LabDownOptions): Promise<void> {
  const { reporter } = options;
  const root = options.stateRoot ?? LAB_STATE_DIR;
  const state = readState(root);
  for (const record of [...(state?.processes ?? [])].reverse()) {
    const outcome = await stopRecordedProcess(record, options.stopTimeoutMs);
    if (outcome === 'not-running') reporter.step(`${record.name}: was not running`);
    else
      reporter.ok(
        `${record.name}: stopped (pid ${record.pid}${outcome === 'killed' ? ', needed SIGKILL' : ''})`,
      );
  }

  const present = await listNamespaces();
  for (const ns of Object.values(LAB_NAMESPACES)) {
    if (!present.includes(ns)) continue;
    const leftovers = await killNamespaceProcesses(ns, 3_000);
    if (leftovers.length > 0)
      reporter.warn(`${ns}: ended ${leftovers.length} leftover process(es): ${leftovers.join(' ')}`);
    await deleteNamespace(ns);
    reporter.ok(`${ns}: deleted`);
  }
  const removed = removeLabHosts(state?.createdEtcDirs ?? []);
  if (removed.length > 0) reporter.ok(`lab names removed (${removed.join(', ')})`);
  removeStateDir(root);
  reporter.ok(`lab is down (${root} removed)`);
}

export interface LabProcessStatus {
  name: string;
  namespace: string;
  pid: number;
  running: boolean;
  ready: boolean;
  log: string;
  startedAt: string;
}

export interface LabNamespaceStatus {
  role: LabRole;
  name: LabNamespace;
  exists: boolean;
  interfaces: { name: string; state: string; addresses: string[] }[];
}

export interface LabStatus {
  /** Every namespace exists and every recorded process runs and is ready. */
  up: boolean;
  stateDir: string;
  namespaces: LabNamespaceStatus[];
  processes: LabProcessStatus[];
}

export async function labStatus(stateRoot = LAB_STATE_DIR): Promise<LabStatus> {
  const present = await listNamespaces();
  const namespaces = await Promise.all(
    (Object.entries(LAB_NAMESPACES) as [LabRole, LabNamespace][]).map(async ([role, name]) => {
      const exists = present.includes(name);
      const interfaces = exists ? await listInterfaces(name) : [];
      return { role, name, exists, interfaces };
    }),
  );
  const state = readState(stateRoot);
  const processes = await Promise.all(
    (state?.processes ?? []).map(async (record) => {
      const running = isRecordRunning(record);
      const ready =
        running &&
        present.includes(record.namespace) &&
        (await probeInNamespace(record.namespace, record.ready));
      return {
        name: record.name,
        namespace: record.namespace,
        pid: record.pid,
        running,
        ready,
        log: record.log,
        startedAt: record.startedAt,
      };
    }),
  );
  const up = namespaces.every((n) => n.exists) && processes.length > 0 && processes.every((p) => p.ready);
  return { up, stateDir: stateRoot, namespaces, processes };
}

/** Runs argv inside a lab namespace with this terminal; resolves with its exit code. */
export function labExec(ns: LabNamespace, argv: readonly string[]): Promise<number> {
  const [ip, ...args] = execInNamespaceArgv(ns, argv);
  // The terminal sends Ctrl-C to the child as well; moat must outlive it to pass on its exit code.
  const ignore = () => {};
  process.on('SIGINT', ignore);
  return new Promise<number>((resolve, reject) => {
    const child = spawn(ip, args, { stdio: 'inherit' });
    child.on('error', reject);
    // Shell convention: killed by signal N → 128 + N.
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  }).finally(() => process.off('SIGINT', ignore));
}
