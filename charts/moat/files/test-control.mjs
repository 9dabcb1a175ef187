// `helm test` for control: runs in the control image (node, @grpc/grpc-js) and
// calls the control Service: GET /healthz and /readyz on the HTTP port, then
// grpc.health.v1.Health/Check on the gRPC port. Exit 0 only if all answer well.
// Also run by `scripts/images.sh smoke control` against the bare container.
//
// Env: MOAT_TEST_HOST, MOAT_TEST_GRPC_PORT, MOAT_TEST_HTTP_PORT,
//      MOAT_TEST_TIMEOUT_MS (per call, default 5000).
import { createRequire } from "node:module";

const host = process.env.MOAT_TEST_HOST ?? "127.0.0.1";
const grpcPort = Number(process.env.MOAT_TEST_GRPC_PORT ?? 50051);
const httpPort = Number(process.env.MOAT_TEST_HTTP_PORT ?? 9401);
const timeoutMs = Number(process.env.MOAT_TEST_TIMEOUT_MS ?? 5000);

let failed = 0;
const report = (ok, what, detail) => {
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? ` — ${detail}` : ""}`);
};

async function httpCheck(path) {
  const url = `http://${host}:${httpPort}${path}`;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    report(res.status === 200, `GET ${url}`, `HTTP ${res.status}`);
  } catch (err) {
    report(false, `GET ${url}`, err.cause?.message ?? err.message);
  }
}

// grpc.health.v1.Health/Check with an empty request (the server's overall
// health). The response is HealthCheckResponse { status = 1 }: SERVING is the
// two bytes 0x08 0x01, so no generated code or proto loader is needed.
function grpcHealthCheck() {
  const what = `grpc.health.v1.Health/Check ${host}:${grpcPort}`;
  // Resolve @grpc/grpc-js from the service's own dependencies in the image.
  const require = createRequire(`${process.cwd()}/package.json`);
  let grpc;
  try {
    grpc = require("@grpc/grpc-js");
  } catch {
    report(false, what, "@grpc/grpc-js not found (run this from the control image)");
    return Promise.resolve();
  }
  const client = new grpc.Client(`${host}:${grpcPort}`, grpc.credentials.createInsecure());
  const names = ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"];
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      "/grpc.health.v1.Health/Check",
      (req) => req,
      (buf) => buf,
      Buffer.alloc(0),
      { deadline: Date.now() + timeoutMs },
      (err, res) => {
        if (err) {
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

await httpCheck("/healthz");
await httpCheck("/readyz");
await grpcHealthCheck();
console.log(failed ? `${failed} check(s) failed` : "all checks passed");
process.exit(failed ? 1 : 0);
