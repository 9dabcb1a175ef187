import { readFileSync } from 'node:fs';
import { sleep } from './run.js';

/**
 * Process facts from /proc and group signalling. Processes we start are
 * session/group leaders (setsid), so signalling -pid reaches their children too.
 */

interface ProcStat {
  state: string;
  startTime: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0] ?? '?', startTime: Number(fields[19]) };
  } catch {
    return undefined;
  }
}

/** Start time in clock ticks since boot; undefined if the process is gone. */
export function processStartTime(pid: number): number | undefined {
  return readStat(pid)?.startTime;
}

/**
 * True while `pid` exists, is not a zombie, and (when given) still has the
 * start time we recorded — so a recycled pid is never mistaken for ours.
 */
export function isRunning(pid: number, startTime?: number): boolean {
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === undefined || stat.startTime === startTime;
}

/** Sends `signal` to the whole process group; false if it no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export function signalProcess(pid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitForExit(
  pid: number,
  startTime: number | undefined,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isRunning(pid, startTime)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * SIGTERM the group, wait up to `timeoutMs`, then SIGKILL it.
 * Returns how it ended: 'not-running' | 'terminated' | 'killed'.
 */
export async function stopProcessGroup(
  pid: number,
  startTime: number | undefined,
  timeoutMs: number,
): Promise<'not-running' | 'terminated' | 'killed'> {
  if (!isRunning(pid, startTime)) return 'not-running';
  signalGroup(pid, 'SIGTERM');
  if (await waitForExit(pid, startTime, timeoutMs)) {
    // The leader is gone; make sure nothing it forked lingers in its group.
    signalGroup(pid, 'SIGKILL');
    return 'terminated';
  }
  signalGroup(pid, 'SIGKILL');
  await waitForExit(pid, startTime, 2_000);
  return 'killed';
}

/** Last lines of a log file, for error messages. */
export function tailFile(path: string, lines = 10): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
