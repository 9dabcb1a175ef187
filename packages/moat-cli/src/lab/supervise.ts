import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { ReadyCheck } from '../probes.js';
import { isRunning, processStartTime, signalProcess, stopProcessGroup, waitForExit } from '../proc.js';
import { execInNamespaceArgv, namespacePids } from './netns.js';
import type { LabProcessRecord } from './state.js';
import type { LabNamespace } from './topology.js';

/** A long-running lab process: what to run, where, and how to know it is ready. */
export interface LabProcessSpec {
  name: string;
  namespace: LabNamespace;
  command: string;
  args: string[];
  cwd: string;
  env?: Record<string, string>;
  ready: ReadyCheck;
}

/**
 * Starts `spec` inside its namespace, detached: own session and process group
 * (setsid), stdin closed, stdout+stderr appended to `logPath`. It outlives this CLI.
 * `ip netns exec` execs the command in place, so the pid we get is the process itself.
 */
export function startDetachedInNamespace(spec: LabProcessSpec, logPath: string): LabProcessRecord {
  const [ip, ...ipArgs] = execInNamespaceArgv(spec.namespace, [spec.command, ...spec.args]);
  const log = openSync(logPath, 'a');
  try {
    const child = spawn(ip, ipArgs, {
      cwd: spec.cwd,
      env: { ...process.env, ...spec.env },
      detached: true,
      stdio: ['ignore', log, log],
    });
    if (child.pid === undefined) throw new Error(`could not start ${spec.name} (${spec.command})`);
    // A failed exec is reported by the readiness wait (the process is gone); don't crash on it here.
    child.on('error', () => {});
    child.unref();
    return {
      name: spec.name,
      namespace: spec.namespace,
      pid: child.pid,
      startTime: processStartTime(child.pid) ?? 0,
      command: spec.command,
      args: spec.args,
      log: logPath,
      ready: spec.ready,
      startedAt: new Date().toISOString(),
    };
  } finally {
    closeSync(log);
  }
}

export function isRecordRunning(record: LabProcessRecord): boolean {
  return isRunning(record.pid, record.startTime || undefined);
}

export function stopRecordedProcess(record: LabProcessRecord, timeoutMs: number) {
  return stopProcessGroup(record.pid, record.startTime || undefined, timeoutMs);
}

/**
 * Ends every process still inside `ns` (things we did not record, e.g. a
 * shell from `moat lab exec`): SIGTERM, a grace period, then SIGKILL.
 * Returns the pids it found.
 */
export async function killNamespaceProcesses(ns: LabNamespace, graceMs: number): Promise<number[]> {
  const pids = (await namespacePids(ns)).filter((pid) => pid !== process.pid);
  for (const pid of pids) signalProcess(pid, 'SIGTERM');
  await Promise.all(pids.map((pid) => waitForExit(pid, undefined, graceMs)));
  for (const pid of pids) if (isRunning(pid)) signalProcess(pid, 'SIGKILL');
  await Promise.all(pids.map((pid) => waitForExit(pid, undefined, 2_000)));
  return pids;
}
