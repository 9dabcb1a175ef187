// Child processes, temp dirs, ports and clean-up for the benchmark. Every process started here is
// tracked by pid and stopped on exit, Ctrl-C, SIGTERM or an error; the temp dir is removed.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const tracked = new Set(); // { name, child, exited }
const tempDirs = new Set();
const cleanupHooks = []; // run after the processes are stopped, newest first
let cleaning;
let keep = false;

/** Leave the temp dirs in place on exit (for --keep-temp). */
export function keepTempDirs() {
  keep = true;
}

export const log = (msg) =>
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export function makeTempDir(prefix = 'moat-bench-') {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/**
 * Starts a long-lived process with stdout/stderr to `<logDir>/<name>.log`. Returns a handle whose
 * `exited` promise resolves with the exit code; `stop()` sends SIGTERM, then SIGKILL after `graceMs`.
 */
export function startProcess(name, cmd, args, { logDir, env, cwd, graceMs = 5000 } = {}) {
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: env ?? process.env, cwd });
  const handle = { name, child, pid: child.pid, logFile, done: false, graceMs };
  handle.exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      handle.done = true;
      tracked.delete(handle);
      resolve(code ?? signal);
    });
    child.on('error', (err) => {
      handle.done = true;
      tracked.delete(handle);
      handle.error = err;
      resolve(err.message);
    });
  });
  handle.stop = () => stopProcess(handle);
  handle.tail = (n = 20) => tailFile(logFile, n);
  tracked.add(handle);
  return handle;
}

async function stopProcess(handle) {
  if (handle.done) return;
  try {
    process.kill(handle.pid, 'SIGTERM');
  } catch {}
  const timer = setTimeout(() => {
    try {
      process.kill(handle.pid, 'SIGKILL');
    } catch {}
  }, handle.graceMs);
  await handle.exited;
  clearTimeout(timer);
}

export function tailFile(file, n = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Runs a short-lived command to completion, collecting stdout/stderr. Killed (and tracked for
 * clean-up) like the long-lived ones.
 */
export function run(cmd, args, { env, timeoutMs = 0, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], env });
    const handle = { name: cmd, child, pid: child.pid, done: false, graceMs: 1000 };
    tracked.add(handle);
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    if (input !== undefined) child.stdin.end(input);
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            try {
              child.kill('SIGKILL');
            } catch {}
          }, timeoutMs)
        : undefined;
    child.on('error', (e) => {
      clearTimeout(timer);
      tracked.delete(handle);
      reject(new Error(`${cmd}: ${e.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      handle.done = true;
      tracked.delete(handle);
      resolve({
        code: code ?? -1,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
      });
    });
  });
}

/** A port nothing listens on right now (the kernel picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export function canConnect(port, host = '127.0.0.1') {
  return new Promise((resolve) => {
    const s = net.connect({ port, host });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Polls `check` until it returns true; throws with the process log tail if the process died or time ran out. */
export async function waitFor(what, check, { timeoutMs = 20_000, handle, intervalMs = 100 } = {}) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (handle?.done) throw new Error(`${what}: process exited early\n${handle.tail()}`);
    if (await check().catch(() => false)) return;
    await sleep(intervalMs);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms${handle ? `\n${handle.tail()}` : ''}`);
}

/** `fn` (synchronous) runs at clean-up once every process is stopped: for what a process held. */
export function onCleanup(fn) {
  cleanupHooks.push(fn);
}

function runCleanupHooks() {
  while (cleanupHooks.length) {
    try {
      cleanupHooks.pop()();
    } catch (err) {
      log(`clean-up: ${err.message}`);
    }
  }
}

/** Stops every tracked process (newest first) and removes the temp dirs. Idempotent. */
export function cleanup() {
  cleaning ??= (async () => {
    const handles = [...tracked].reverse();
    for (const h of handles) await stopProcess(h).catch(() => {});
    runCleanupHooks();
    if (!keep) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  })();
  return cleaning;
}

/** Last resort on a synchronous exit: SIGKILL what is left and remove the temp dirs. */
function cleanupSync() {
  for (const h of tracked) {
    try {
      process.kill(h.pid, 'SIGKILL');
    } catch {}
  }
  runCleanupHooks();
  if (!keep) for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * Runs a benchmark's `main` (resolving to its exit code), cleans up, and exits; an error is printed as
 * `<label>: <message>` (the stack with MOAT_BENCH_DEBUG=1; a pointer to --help when `help`), unless a
 * signal caused it.
 */
export function runMain(main, label, { help = true } = {}) {
  main()
    .then(async (code) => {
      await cleanup();
      process.exit(code);
    })
    .catch(async (err) => {
      const what = process.env.MOAT_BENCH_DEBUG ? (err.stack ?? err.message) : err.message;
      if (!interrupted) process.stderr.write(`${label}: ${what}${help ? '\n(see --help)' : ''}\n`);
      await cleanup();
      process.exit(1);
    });
}

let interrupted = false;
/** True once a signal asked us to stop: errors after that are its consequence, not failures. */
export const isInterrupted = () => interrupted;

export function installCleanupHandlers() {
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      interrupted = true;
      log(`${sig}: stopping everything`);
      cleanup().finally(() => process.exit(130));
    });
  }
  process.on('exit', cleanupSync);
}

/**
 * Runs this same script again inside a fresh network namespace with only loopback up (as root), so
 * nothing on the host sees or disturbs the benchmark's traffic; MOAT_BENCH_NETNS tells the child
 * where it is. `hostNames` resolve to 127.0.0.1 there (through the namespace's own /etc/hosts).
 * Resolves with the child's exit code; the namespace is removed afterwards. `keepSysfs` enters the
 * namespace with nsenter instead of `ip netns exec`, which remounts /sys and so hides the cgroup
 * hierarchies (needed for CPU limits); it cannot be combined with `hostNames`.
 */
export async function rerunInNetns(prefix, { hostNames, keepSysfs = false } = {}) {
  if (hostNames && keepSysfs) throw new Error('rerunInNetns: hostNames needs ip netns exec, not keepSysfs');
  const ns = `${prefix}-${process.pid}`;
  const etc = `/etc/netns/${ns}`;
  const ip = async (...args) => {
    const r = await run('ip', args);
    if (r.code !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr}`);
  };
  if (hostNames) {
    mkdirSync(etc, { recursive: true });
    writeFileSync(join(etc, 'hosts'), `127.0.0.1 localhost\n127.0.0.1 ${hostNames.join('\n127.0.0.1 ')}\n`);
  }
  await ip('netns', 'add', ns);
  try {
    await ip('-n', ns, 'link', 'set', 'lo', 'up');
    const enter = keepSysfs ? ['nsenter', `--net=/run/netns/${ns}`] : ['ip', 'netns', 'exec', ns];
    const child = spawn(enter[0], [...enter.slice(1), process.execPath, ...process.argv.slice(1)], {
      stdio: 'inherit',
      env: { ...process.env, MOAT_BENCH_NETNS: ns },
    });
    const stop = () => child.kill('SIGTERM');
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    return await new Promise((done) => child.on('exit', (code) => done(code ?? 1)));
  } finally {
    await run('ip', ['netns', 'del', ns]);
    if (hostNames) rmSync(etc, { recursive: true, force: true });
  }
}
