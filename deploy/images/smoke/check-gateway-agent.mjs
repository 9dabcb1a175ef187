// The smoke check of a gateway agent's image (firewall, qos), run inside the image by
// scripts/images.sh: health, readiness and the service's own metrics on its HTTP port.
const host = process.env.MOAT_TEST_HOST ?? '127.0.0.1';
const port = process.env.MOAT_TEST_HTTP_PORT;
const metric = process.env.MOAT_TEST_METRIC;
if (!port || !metric) {
  console.error('set MOAT_TEST_HTTP_PORT and MOAT_TEST_METRIC');
  process.exit(2);
}
let failed = false;
async function check(path, expect) {
  try {
    const res = await fetch(`http://${host}:${port}${path}`, { signal: AbortSignal.timeout(5000) });
    const body = await res.text();
    const ok = res.status === 200 && expect(body);
    console.log(`${ok ? 'ok  ' : 'FAIL'} GET ${path} → ${res.status}`);
    if (!ok) failed = true;
  } catch (err) {
    console.log(`FAIL GET ${path}: ${err.message}`);
    failed = true;
  }
}
await check('/healthz', () => true);
await check('/readyz', () => true);
await check('/metrics', (body) => body.includes(metric));
process.exit(failed ? 1 : 0);
