// loadtest/av: clamd as both stacks run it (Moat's own clamd.conf, @moat/clamav's renderClamdConfig),
// and Moat's gateway antivirus — the proxy (via ../../proxy/lib/stacks.mjs startMoat, with its NATS and
// Redis) plus a changeable number of av-scanner worker processes, sharing one clamd or each in a
// "pod" with a clamd of its own and a CPU limit (./cpu-limit.mjs), as the chart deploys them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { httpGet } from '../../proxy/lib/http.mjs';
import { freePort, log, onCleanup, startProcess, waitFor } from '../../proxy/lib/procs.mjs';
import { cleanEnv, startMoat } from '../../proxy/lib/stacks.mjs';
import { createCpuLimit } from './cpu-limit.mjs';
import { clamdCommand } from './icap-stack.mjs';

const CLAMD = '/usr/sbin/clamd';

/**
 * One clamd in the foreground on a unix socket in `<dir>/<name>`, with the config Moat deploys
 * (renderClamdConfig: StreamMaxLength 64 MiB, fail-closed limits) plus `DisableCache yes` (unique-content
 * figures; clamd's own cache would flatter repeated files on both sides) and its temp files in its own
 * directory. Both stacks get one of these, so their engines are configured alike. With `cpuLimit`
 * (createCpuLimit) clamd runs inside that CPU budget.
 */
export async function startBenchClamd(dir, name, { repo, dbDir, maxThreads, cpuLimit }) {
  const { renderClamdConfig } = await import(join(repo, 'packages/clamav/dist/index.js'));
  const root = join(dir, name);
  mkdirSync(join(root, 'tmp'), { recursive: true });
  const socket = join(root, 'clamd.sock');
  const conf = join(root, 'clamd.conf');
  writeFileSync(
    conf,
    `${renderClamdConfig({
      listen: { path: socket },
      databaseDirectory: dbDir,
      streamMaxLength: 64 * 2 ** 20,
      maxThreads,
      disableCache: true,
      selfCheckSeconds: 600,
      pidFile: join(root, 'clamd.pid'),
    })}TemporaryDirectory ${join(root, 'tmp')}\n`,
  );
  const [cmd, args] = cpuLimit ? cpuLimit.wrap(CLAMD, ['-c', conf]) : [CLAMD, ['-c', conf]];
  const handle = startProcess(name, cmd, args, { logDir: root, env: cleanEnv() });
  await waitFor(`${name} PING`, async () => (await clamdCommand(socket, 'PING')) === 'PONG', {
    handle,
    timeoutMs: 60_000,
    intervalMs: 200,
  });
  const version = await clamdCommand(socket, 'VERSION');
  return { name, socket, conf, version, maxThreads, pid: handle.pid, handle, stop: () => handle.stop() };
}

/** Parses Prometheus text: `name{labels} value` → [{ name, labels, value }]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]),
    );
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/**
 * Moat's gateway antivirus: the proxy under `policyFile` (its antivirus profile), its NATS and Redis,
 * and av-scanner workers (each with MOAT_AV_SCANNER_CONCURRENCY = `concurrency`) on `clamd`.
 * With `podCpu` (cores) instead of `clamd`, each worker is a pod: it gets a clamd of its own, and
 * both run under one CPU limit of `podCpu` cores.
 * `nodeOptions` goes into NODE_OPTIONS of the proxy and the workers (profiling, experiments).
 * `setWorkers(n)` starts or stops workers until n are ready. `cpuGroups()` names the pids whose CPU
 * is what scanning costs Moat, by component; `podThrottling()` sums the pods' CPU-limit counters.
 */
export async function startMoatAv(
  dir,
  { repo, policyFile, clamd, podCpu, dbDir, concurrency, nodeOptions = '', name = 'moat-av' },
) {
  if (!clamd === !podCpu) throw new Error('startMoatAv: give either a shared clamd or podCpu');
  const nodeEnv = nodeOptions ? { NODE_OPTIONS: nodeOptions } : {};
  const stack = await startMoat(dir, { repo, policyFile, name, extraEnv: nodeEnv });
  const [natsPid, redisPid] = stack.supportPids();
  const workerMain = join(repo, 'services/av-scanner/dist/main.js');
  const workers = [];
  let serial = 0;

  const startWorker = async () => {
    const id = `${name}-av-scanner-${++serial}`;
    const root = join(dir, name, id);
    mkdirSync(root, { recursive: true });
    const httpPort = await freePort();
    let pod;
    if (podCpu) {
      const cpuLimit = createCpuLimit(`moat-bench-${process.pid}-${id}`, podCpu);
      onCleanup(() => cpuLimit.remove());
      const podClamd = await startBenchClamd(root, 'clamd', {
        repo,
        dbDir,
        maxThreads: concurrency,
        cpuLimit,
      });
      pod = { cpuLimit, clamd: podClamd };
    }
    const command = [process.execPath, ['--enable-source-maps', workerMain]];
    const [cmd, args] = pod ? pod.cpuLimit.wrap(...command) : command;
    const handle = startProcess(id, cmd, args, {
      logDir: root,
      cwd: repo,
      env: cleanEnv({
        MOAT_NATS_URL: stack.env.MOAT_NATS_URL,
        MOAT_REDIS_URL: stack.env.MOAT_REDIS_URL,
        MOAT_LOG_LEVEL: 'warn',
        MOAT_INSTANCE_ID: id,
        MOAT_AV_SCANNER_HTTP_PORT: String(httpPort),
        MOAT_AV_SCANNER_CLAMD_ADDRESS: (pod?.clamd ?? clamd).socket,
        MOAT_AV_SCANNER_SIGNATURE_DIR: dbDir,
        MOAT_AV_SCANNER_CONCURRENCY: String(concurrency),
        ...nodeEnv,
      }),
    });
    await waitFor(
      `${id} /readyz`,
      async () => (await httpGet({ port: httpPort, path: '/readyz' })).status === 200,
      { handle, timeoutMs: 60_000, intervalMs: 200 },
    );
    return { id, httpPort, handle, pid: handle.pid, pod };
  };

  const stopWorker = async (worker) => {
    await worker.handle.stop();
    if (!worker.pod) return;
    await worker.pod.clamd.stop();
    worker.pod.cpuLimit.remove();
  };

  const setWorkers = async (n) => {
    if (workers.length === n) return;
    const started = Date.now();
    while (workers.length > n) await stopWorker(workers.pop());
    const added = [];
    while (workers.length + added.length < n) added.push(startWorker());
    workers.push(...(await Promise.all(added)));
    log(`${name}: ${n} av-scanner worker${n === 1 ? '' : 's'} ready (${Date.now() - started} ms)`);
  };

  /** The proxy's antivirus verdict counters: { scanned, cached, infected, error } so far. */
  const verdicts = async () => {
    const res = await httpGet({ port: stack.httpPort, path: '/metrics' });
    const counts = { scanned: 0, cached: 0, infected: 0, error: 0 };
    for (const m of parseMetrics(res.body.toString())) {
      if (m.name !== 'moat_proxy_av_verdicts_total') continue;
      if (m.labels.result === 'error') counts.error += m.value;
      else {
        if (m.labels.cached === 'true') counts.cached += m.value;
        else counts.scanned += m.value;
        if (m.labels.result === 'infected') counts.infected += m.value;
      }
    }
    return counts;
  };

  /** Forgets every cached verdict (the next download of any file is scanned again). */
  const forgetVerdicts = async () => {
    const { Redis } = await import('ioredis');
    const redis = new Redis(stack.env.MOAT_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
    try {
      await redis.connect();
      let cursor = '0';
      let removed = 0;
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', 'moat:av:verdict:*', 'COUNT', 1000);
        cursor = next;
        if (keys.length) removed += await redis.unlink(...keys);
      } while (cursor !== '0');
      return removed;
    } finally {
      redis.disconnect();
    }
  };

  const stopProxy = stack.stop;
  return Object.assign(stack, {
    clamd,
    concurrency,
    setWorkers,
    workerCount: () => workers.length,
    verdicts,
    forgetVerdicts,
    cpuGroups: () => ({
      proxy: [stack.pid],
      workers: workers.map((w) => w.pid),
      clamd: clamd ? [clamd.pid] : workers.map((w) => w.pod.clamd.pid),
      nats: [natsPid],
      redis: [redisPid],
    }),
    podThrottling: () => {
      const sum = { periods: 0, throttledPeriods: 0, throttledMs: 0 };
      for (const w of workers)
        for (const [k, v] of Object.entries(w.pod?.cpuLimit.throttling() ?? {})) sum[k] += v;
      return sum;
    },
    stop: async () => {
      while (workers.length) await stopWorker(workers.pop());
      await stopProxy();
    },
  });
}
