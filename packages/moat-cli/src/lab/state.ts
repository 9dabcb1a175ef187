import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ReadyCheck } from '../probes.js';
import type { LabNamespace } from './topology.js';

/**
 * /run/moat-lab/ holds everything a later `moat lab status|down` needs to find
 * what `up` started: state.json (pids, addresses, log paths), logs/, and the data
 * dirs of NATS and Redis. /run is tmpfs, so a reboot forgets a lab that is gone anyway.
 */

export const LAB_STATE_DIR = '/run/moat-lab';

export const labPaths = (root = LAB_STATE_DIR) => ({
  root,
  stateFile: join(root, 'state.json'),
  logs: join(root, 'logs'),
  natsStore: join(root, 'nats'),
  redisDir: join(root, 'redis'),
  /** The trace receiver's output: OTLP/JSON lines, one per export (see scripts/lib/otelcol/lab.yaml). */
  otel: join(root, 'otel'),
  traces: join(root, 'otel', 'traces.jsonl'),
  logFile: (name: string) => join(root, 'logs', `${name}.log`),
  /** The lab CA and the origin's certificate (see tls.ts). */
  tls: join(root, 'tls'),
  caCert: join(root, 'tls', 'ca.crt'),
  caKey: join(root, 'tls', 'ca.key'),
  /** The proxy ↔ tls-mediation mutual TLS certificates (see service-tls.ts). */
  serviceTls: join(root, 'tls', 'services'),
  originCert: join(root, 'tls', 'origin.crt'),
  originKey: join(root, 'tls', 'origin.key'),
});

/** The lab CA certificate (PEM) while the lab is up: what tests and clients trust for lab HTTPS. */
export const LAB_CA_CERT = labPaths().caCert;

export interface LabProcessRecord {
  name: string;
  namespace: LabNamespace;
  pid: number;
  /** /proc/<pid>/stat start time: tells our process apart from a later one that reused the pid. */
  startTime: number;
  command: string;
  args: string[];
  log: string;
  ready: ReadyCheck;
  startedAt: string;
}

export interface LabState {
  version: 1;
  createdAt: string;
  updatedAt: string;
  addresses: Record<string, string>;
  /** In start order; `down` stops them in reverse. */
  processes: LabProcessRecord[];
  /** Directories under /etc/netns that `up` created, for `down` to remove (when empty). */
  createdEtcDirs?: string[];
}

export function emptyState(addresses: Record<string, string>): LabState {
  const now = new Date().toISOString();
  return { version: 1, createdAt: now, updatedAt: now, addresses, processes: [] };
}

export function readState(root = LAB_STATE_DIR): LabState | undefined {
  try {
    return JSON.parse(readFileSync(labPaths(root).stateFile, 'utf8')) as LabState;
  } catch {
    return undefined;
  }
}

/** Written atomically (tmp + rename) so a crash never leaves half a file. */
export function writeState(state: LabState, root = LAB_STATE_DIR): void {
  const { stateFile } = labPaths(root);
  const tmp = `${stateFile}.tmp`;
  writeFileSync(tmp, `${JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2)}\n`);
  renameSync(tmp, stateFile);
}

export function ensureStateDirs(root = LAB_STATE_DIR): void {
  const paths = labPaths(root);
  for (const dir of [paths.root, paths.logs, paths.natsStore, paths.redisDir, paths.otel])
    mkdirSync(dir, { recursive: true });
  // Certificates are public (the proxy, running as nobody, trusts the lab CA); every key in it is 0600.
  mkdirSync(paths.tls, { recursive: true, mode: 0o755 });
  chmodSync(paths.tls, 0o755);
}

export function removeStateDir(root = LAB_STATE_DIR): void {
  rmSync(root, { recursive: true, force: true });
}
