// `helm test` for av-scanner: runs in the av-scanner image (node only) and calls the av-scanner
// Service: GET /healthz, then /readyz, which must be 200 with every check ok — above all clamd
// answering beside the worker, the EICAR self-test passed and the signatures young enough — then
// /metrics, which must report clamd up and the self-test passed. Exit 0 only if all answer well.
// Also run by `scripts/images.sh smoke av-scanner` against the bare containers (worker + clamd).
//
// Env: MOAT_TEST_HOST, MOAT_TEST_HTTP_PORT, MOAT_TEST_TIMEOUT_MS (per call, default 5000).
const host = process.env.MOAT_TEST_HOST ?? "127.0.0.1";
const httpPort = Number(process.env.MOAT_TEST_HTTP_PORT ?? 9407);
const timeoutMs = Number(process.env.MOAT_TEST_TIMEOUT_MS ?? 5000);

let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? ` — ${detail}` : ""}`);
};

async function get(path) {
  const url = `http://${host}:${httpPort}${path}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { url, status: res.status, body: await res.text() };
  } catch (err) {
    report(false, `GET ${url}`, err.cause?.message ?? err.message);
    return undefined;
  }
}

const healthz = await get("/healthz");
if (healthz) report(healthz.status === 200, `GET ${healthz.url}`, `HTTP ${healthz.status}`);

const readyz = await get("/readyz");
if (readyz) {
  let checks = {};
  try {
    checks = JSON.parse(readyz.body).checks ?? {};
  } catch {
    // reported below: the checks are missing
  }
  report(readyz.status === 200, `GET ${readyz.url}`, `HTTP ${readyz.status}`);
  for (const name of ["clamd", "self-test", "signatures", "nats", "redis"]) {
    report(checks[name] === "ok", `readiness check ${name}`, checks[name] ?? "missing");
  }
}

const metrics = await get("/metrics");
if (metrics) {
  report(metrics.status === 200, `GET ${metrics.url}`, `HTTP ${metrics.status}`);
  for (const [name, want] of [
    ["moat_av_clamd_up", 1],
    ["moat_av_self_test_passed", 1],
  ]) {
    const value = metrics.body.match(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "m"))?.[1];
    report(Number(value) === want, `metric ${name}`, value === undefined ? "missing" : `= ${value}`);
  }
}

process.exit(failed ? 1 : 0);
