// `helm test` for tls-mediation: runs in the tls-mediation image (node, @grpc/grpc-js)
// and calls the tls-mediation Service as a client would:
//   - GET /ca.pem on the CA port: exactly one PEM certificate, a CA (basicConstraints
//     CA:TRUE), not expired, and no "PRIVATE KEY" anywhere in the answer;
//   - GET /ca.der on the CA port: the same certificate;
//   - GET /healthz and /readyz on the HTTP port;
//   - grpc.health.v1.Health/Check on the gRPC port (the proxy's path): in plaintext, or, when
//     MOAT_TEST_GRPC_CA_FILE, _CERT_FILE and _KEY_FILE are set (the chart's
//     tlsMediation.grpcTls), over mutual TLS with that client certificate, verifying the server's
//     certificate against the CA and MOAT_TEST_HOST; then a TLS client without a certificate
//     and a plaintext client must both be refused.
// Exit 0 only if all answer well. Also run by `scripts/images.sh smoke tls-mediation`
// against the bare container (no TLS variables: plaintext).
//
// Env: MOAT_TEST_HOST, MOAT_TEST_CA_PORT, MOAT_TEST_HTTP_PORT, MOAT_TEST_GRPC_PORT,
//      MOAT_TEST_GRPC_CA_FILE, MOAT_TEST_GRPC_CERT_FILE, MOAT_TEST_GRPC_KEY_FILE (PEM; all
//      three or none), MOAT_TEST_GRPC_SERVER_NAME (the name the server certificate must carry;
//      default MOAT_TEST_HOST), MOAT_TEST_TIMEOUT_MS (per call, default 5000).
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const host = process.env.MOAT_TEST_HOST ?? "127.0.0.1";
const caPort = Number(process.env.MOAT_TEST_CA_PORT ?? 9406);
const httpPort = Number(process.env.MOAT_TEST_HTTP_PORT ?? 9405);
const grpcPort = Number(process.env.MOAT_TEST_GRPC_PORT ?? 50053);
const timeoutMs = Number(process.env.MOAT_TEST_TIMEOUT_MS ?? 5000);
// The client certificate for mutual TLS on the gRPC port (all three or none: plaintext).
const grpcTlsEnv = ["MOAT_TEST_GRPC_CA_FILE", "MOAT_TEST_GRPC_CERT_FILE", "MOAT_TEST_GRPC_KEY_FILE"];
const grpcServerName = process.env.MOAT_TEST_GRPC_SERVER_NAME || undefined;

let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? ` — ${detail}` : ""}`);
};

// GET url → { status, body (Buffer) }, or null after reporting the failure.
async function get(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
  } catch (err) {
    report(false, `GET ${url}`, err.cause?.message ?? err.message);
    return null;
  }
}

async function httpCheck(path) {
  const url = `http://${host}:${httpPort}${path}`;
  const res = await get(url);
  if (res) report(res.status === 200, `GET ${url}`, `HTTP ${res.status}`);
}

// The CA certificate as clients download it. Returns its DER, or null.
async function caPemCheck() {
  const url = `http://${host}:${caPort}/ca.pem`;
  const res = await get(url);
  if (!res) return null;
  if (res.status !== 200) {
    report(false, `GET ${url}`, `HTTP ${res.status}`);
    return null;
  }
  const text = res.body.toString("latin1");
  report(!/PRIVATE KEY/i.test(text), `GET ${url}: no private key in the answer`);
  const blocks = text.match(/-----BEGIN ([A-Z0-9 ]+)-----/g) ?? [];
  const certificates = blocks.filter((b) => b === "-----BEGIN CERTIFICATE-----").length;
  report(
    blocks.length === 1 && certificates === 1,
    `GET ${url}: one PEM certificate`,
    `${blocks.length} PEM block(s): ${blocks.join(", ") || "none"}`,
  );
  let cert;
  try {
    cert = new X509Certificate(res.body);
  } catch (err) {
    report(false, `GET ${url}: parses as X.509`, err.message);
    return null;
  }
  const expires = new Date(cert.validTo);
  report(cert.ca, `GET ${url}: a CA certificate`, cert.subject.replace(/\n/g, ", "));
  report(expires > new Date(), `GET ${url}: not expired`, `valid until ${expires.toISOString()}`);
  return cert.raw;
}

async function caDerCheck(der) {
  const url = `http://${host}:${caPort}/ca.der`;
  const res = await get(url);
  if (!res) return;
  report(
    res.status === 200 && der !== null && res.body.equals(der),
    `GET ${url}: the same certificate as /ca.pem`,
    `HTTP ${res.status}, ${res.body.length} bytes`,
  );
}

// grpc.health.v1.Health/Check with an empty request (the server's overall
// health). The response is HealthCheckResponse { status = 1 }: SERVING is the
// two bytes 0x08 0x01, so no generated code or proto loader is needed.
// `refused`: the call must fail (a client the server must not admit).
function grpcHealthCheck(grpc, credentials, mode, refused = false) {
  const what = `grpc.health.v1.Health/Check ${host}:${grpcPort} (${mode})`;
  const options = { "grpc.use_local_subchannel_pool": 1 };
  if (grpcServerName) options["grpc.ssl_target_name_override"] = grpcServerName;
  const client = new grpc.Client(`${host}:${grpcPort}`, credentials, options);
  const names = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (req) => req,
      (buf) => buf,
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        if (refused) {
          const detail = err ? `${grpc.status[err.code] ?? err.code}: ${err.details}` : "it answered";
          report(Boolean(err), `${what}: refused`, detail);
        } else if (err) {
          report(false, what, `${grpc.status[err.code] ?? err.code}: ${err.details}`);
        } else {
          const status = res.length >= 2 && res[0] === 0x08 ? res[1] : 0;
          report(status === 1, what, names[status] ?? String(status));
        }
        client.close();
        resolve();
      },
    );
  });
}

// gRPC health in plaintext, or over mutual TLS when the client certificate's files are given.
async function grpcChecks() {
  // Resolve @grpc/grpc-js from the service's own dependencies in the image.
  const require = createRequire(`${process.cwd()}/package.json`);
  let grpc;
  try {
    grpc = require("@grpc/grpc-js");
  } catch {
    report(false, "gRPC health", "@grpc/grpc-js not found (run this from the tls-mediation image)");
    return;
  }
  const set = grpcTlsEnv.filter((name) => process.env[name]);
  if (set.length === 0) {
    await grpcHealthCheck(grpc, grpc.credentials.createInsecure(), "plaintext");
    return;
  }
  if (set.length !== grpcTlsEnv.length) {
    report(false, "gRPC mutual TLS", `${grpcTlsEnv.join(", ")} go together; only ${set.join(", ")} set`);
    return;
  }
  let ca, cert, key;
  try {
    [ca, cert, key] = grpcTlsEnv.map((name) => readFileSync(process.env[name]));
  } catch (err) {
    report(false, "gRPC mutual TLS: read the client certificate", err.message);
    return;
  }
  await grpcHealthCheck(grpc, grpc.credentials.createSsl(ca, key, cert), "mutual TLS");
  await grpcHealthCheck(grpc, grpc.credentials.createSsl(ca), "TLS without a client certificate", true);
  await grpcHealthCheck(grpc, grpc.credentials.createInsecure(), "plaintext", true);
}

await httpCheck("/healthz");
await httpCheck("/readyz");
await caDerCheck(await caPemCheck());
await grpcChecks();
console.log(failed ? `${failed} check(s) failed` : "all checks passed");
process.exit(failed ? 1 : 0);
