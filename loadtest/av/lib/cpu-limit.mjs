// loadtest/av: a CPU budget for a group of processes, the way Kubernetes enforces a pod's CPU limit
// (a CFS quota on the pod's cgroup). The scaling benchmark gives each av-scanner "pod" (worker +
// its own clamd) one of these, so adding a pod adds CPU the way adding a pod on a node with free
// cores does, even on a machine whose cores the rest of the stack already uses.
// cgroup v2 (cpu.max) where the cpu controller lives there, else cgroup v1 (cpu.cfs_quota_us).
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const V2_ROOT = '/sys/fs/cgroup';
const V1_CPU_ROOT = '/sys/fs/cgroup/cpu';
const PERIOD_US = 100_000;

function hierarchy() {
  const controllers = join(V2_ROOT, 'cgroup.controllers');
  if (existsSync(controllers) && readFileSync(controllers, 'utf8').split(/\s+/).includes('cpu')) return 'v2';
  if (existsSync(join(V1_CPU_ROOT, 'cpu.cfs_quota_us'))) return 'v1';
  throw new Error(
    'no cgroup cpu controller found (neither /sys/fs/cgroup/cgroup.controllers with "cpu" nor /sys/fs/cgroup/cpu): run as root on a Linux host with cgroups, or drop --pod-cpu',
  );
}

/**
 * Creates a cgroup `name` limited to `cores` CPUs (0.5 = half a core). `wrap(cmd, args)` returns a
 * command that joins the cgroup and then execs cmd (same pid, so process accounting still works).
 * `throttling()` reads how often the quota bit; `remove()` deletes the cgroup once it is empty.
 */
export function createCpuLimit(name, cores) {
  if (!(cores > 0)) throw new Error(`CPU limit must be > 0 cores, got ${cores}`);
  const kind = hierarchy();
  const quotaUs = Math.round(cores * PERIOD_US);
  let dir;
  if (kind === 'v2') {
    const control = join(V2_ROOT, 'cgroup.subtree_control');
    if (!readFileSync(control, 'utf8').split(/\s+/).includes('cpu')) writeFileSync(control, '+cpu');
    dir = join(V2_ROOT, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpu.max'), `${quotaUs} ${PERIOD_US}`);
  } else {
    dir = join(V1_CPU_ROOT, name);
    mkdirSync(dir);
    writeFileSync(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
    writeFileSync(join(dir, 'cpu.cfs_quota_us'), String(quotaUs));
  }
  const procs = join(dir, 'cgroup.procs');
  return {
    name,
    cores,
    wrap: (cmd, args) => ['/bin/sh', ['-c', `echo $$ > '${procs}' && exec "$0" "$@"`, cmd, ...args]],
    /** Periods so far, how many of them hit the quota, and the time spent throttled (ms). */
    throttling() {
      const stat = Object.fromEntries(
        readFileSync(join(dir, 'cpu.stat'), 'utf8')
          .trim()
          .split('\n')
          .map((line) => line.split(' '))
          .map(([k, v]) => [k, Number(v)]),
      );
      const throttledMs = kind === 'v2' ? stat.throttled_usec / 1000 : stat.throttled_time / 1e6;
      return { periods: stat.nr_periods, throttledPeriods: stat.nr_throttled, throttledMs };
    },
    remove() {
      try {
        rmdirSync(dir);
      } catch (err) {
        if (err.code !== 'ENOENT') throw err;
      }
    },
  };
}
