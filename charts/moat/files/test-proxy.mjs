// `helm test` for the proxy: runs in the proxy image (node only) and calls the
// proxy Service: GET /healthz and /readyz on the HTTP port (when it is exposed),
// then a malformed request on the explicit proxy port, which must be answered
// with HTTP 400 (the listener is up and parses HTTP). Optionally fetches one URL
// through the proxy. Exit 0 only if all answer well.
// Also run by `scripts/images.sh smoke proxy` against the bare container.
//
// Env: MOAT_TEST_HOST, MOAT_TEST_HTTP_HOST (default: MOAT_TEST_HOST),
//      MOAT_TEST_PROXY_PORT, MOAT_TEST_HTTP_PORT (empty: skip
//      the health checks, e.g. bound to the node's loopback in transparent mode),
//      MOAT_TEST_PROXY_URL (empty: skip; http:// → absolute-form GET expecting
//      2xx/3xx, https:// → CONNECT expecting 200), MOAT_TEST_TIMEOUT_MS (per call, default 5000).
//
// Why not fetch something inside the cluster through the proxy by default (say
// control's /healthz)? A fresh install has no Moat policy permitting it, the
// proxy's egress NetworkPolicy allows only upstream ports 80/443, and control
// admits only its own clients; the test would prove configuration, not the proxy.
import { connect } from "node:net";

const host = process.env.MOAT_TEST_HOST ?? "127.0.0.1";
const httpHost = process.env.MOAT_TEST_HTTP_HOST || host;
const proxyPort = Number(process.env.MOAT_TEST_PROXY_PORT ?? 3128);
const httpPort = process.env.MOAT_TEST_HTTP_PORT ?? "9402";
const proxyUrl = process.env.MOAT_TEST_PROXY_URL ?? "";
const timeoutMs = Number(process.env.MOAT_TEST_TIMEOUT_MS ?? 5000);

let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? ` — ${detail}` : ""}`);
};

async function httpCheck(path) {
  const url = `http://${httpHost}:${httpPort}${path}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    report(res.status === 200, `GET ${url}`, `HTTP ${res.status}`);
  } catch (err) {
    report(false, `GET ${url}`, err.cause?.message ?? err.message);
  }
}

// Sends raw bytes to the proxy port and resolves with the response's status
// line (the first line received), or rejects on error, timeout or no answer.
function exchange(payload) {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port: proxyPort });
    let received = "";
    const done = (err, line) => {
      socket.destroy();
      if (err) reject(err);
      else resolve(line);
    };
    socket.setTimeout(timeoutMs, () => done(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once("connect", () => socket.write(payload));
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      const eol = received.indexOf("\r\n");
      if (eol >= 0) done(null, received.slice(0, eol));
    });
    socket.once("end", () =>
      received ? done(null, received.split("\r\n")[0]) : done(new Error("closed without an answer")),
    );
    socket.once("error", (err) => done(err));
  });
}

async function malformedRequest() {
  const what = `malformed request to ${host}:${proxyPort}`;
  try {
    const line = await exchange("NOT/HTTP \x01\x02\r\n\r\n");
    report(/^HTTP\/1\.[01] 400\b/.test(line), what, line || "(empty)");
  } catch (err) {
    report(false, what, err.message);
  }
}

async function throughProxy(target) {
  let url;
  try {
    url = new URL(target);
  } catch {
    report(false, `MOAT_TEST_PROXY_URL ${target}`, "not a URL");
    return;
  }
  const authority = `${url.hostname}:${url.port || (url.protocol === "https:" ? 443 : 80)}`;
  const [what, payload, ok] =
    url.protocol === "https:"
      ? [`CONNECT ${authority} via ${host}:${proxyPort}`,
         `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`, /^HTTP\/1\.[01] 200\b/]
      : [`GET ${url.href} via ${host}:${proxyPort}`,
         `GET ${url.href} HTTP/1.1\r\nHost: ${url.host}\r\nConnection: close\r\n\r\n`, /^HTTP\/1\.[01] [23]\d\d\b/];
  try {
    const line = await exchange(payload);
    report(ok.test(line), what, line);
  } catch (err) {
    report(false, what, err.message);
  }
}

if (httpPort) {
  await httpCheck("/healthz");
  await httpCheck("/readyz");
} else {
  console.log("skip /healthz, /readyz — the health port is bound to the node's loopback");
}
await malformedRequest();
if (proxyUrl) await throughProxy(proxyUrl);
console.log(failed ? `${failed} check(s) failed` : "all checks passed");
process.exit(failed ? 1 : 0);
