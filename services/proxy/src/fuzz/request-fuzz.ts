/**
 * A mutation fuzzer for the proxy's request-parsing boundary. Runs the real proxy process (real
 * NATS, Redis, an origin), throws mutated requests at it over raw sockets for a while, and reports:
 *
 *   - crashes: the proxy process exited, or /healthz stopped answering;
 *   - internal errors: a 500 from the proxy (every bad input must get a 4xx, not a 500);
 *   - smuggling: the origin received a request for /SMUGGLED, which only ever appears inside
 *     request bodies of the seeds, never in a request line the fuzzer writes.
 *
 * Usage: node services/proxy/dist/fuzz/request-fuzz.js [--minutes N] [--seed S] [--concurrency C] [--json]
 * (an input the proxy holds open waiting for more bytes is cut after 400 ms and counted as status 0)
 * Inputs that found a problem are written to a temporary directory, named in the report.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { rawExchange, startOrigin, startProxyHarness, statusOf } from '../testing/harness.js';

const POLICY = `
apiVersion: moat/v1
kind: Policy
metadata: { name: fuzz }
objects:
  urlCategories:
    blocked: { domains: [blocked.test] }
profiles:
  webFiltering:
    f: { blockCategories: [blocked] }
  contentFiltering:
    c: { maxRequestBodySize: 64KiB, blockExtensions: [exe] }
utmPolicies:
  u:
    http: { webFiltering: f, contentFiltering: c }
securityRules:
  - { name: all, fromZones: any, toZones: any, source: any, destination: any, service: any, action: permit, utmPolicy: u }
`;

/** A small deterministic PRNG (mulberry32), so a run can be replayed with --seed. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function seeds(host: string): string[] {
  const smuggled = `GET /SMUGGLED HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const abs = `http://${host}`;
  return [
    `GET ${abs}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `GET ${abs}/a?b=c HTTP/1.0\r\nHost: ${host}\r\nAccept: text/html\r\n\r\n`,
    `POST ${abs}/p HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 5\r\n\r\nhello`,
    `POST ${abs}/p HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n`,
    `POST ${abs}/p HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${smuggled.length + 5}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
    `POST ${abs}/p HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${smuggled.length.toString(16)}\r\n${smuggled}\r\n0\r\n\r\n`,
    `POST ${abs}/p HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\n\r\n${smuggled}`,
    `GET ${abs}/k HTTP/1.1\r\nHost: ${host}\r\n\r\nGET ${abs}/k2 HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `CONNECT ${host} HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
    `GET http://blocked.test/x.exe HTTP/1.1\r\nHost: blocked.test\r\n\r\n`,
    `OPTIONS * HTTP/1.1\r\nHost: ${host}\r\n\r\n`,
  ];
}

const TOKENS = [
  '\r\n',
  '\n',
  '\r',
  '\0',
  ' ',
  '\t',
  ':',
  ',',
  ';',
  '\x0b',
  '\x7f',
  '\xff',
  'Transfer-Encoding: chunked\r\n',
  'Content-Length: 7\r\n',
  'Content-Length: -1\r\n',
  'Transfer-Encoding: xchunked\r\n',
  'Host: other.test\r\n',
  'Connection: close\r\n',
  'Expect: 100-continue\r\n',
  'Upgrade: websocket\r\nConnection: Upgrade\r\n',
  'ffffffff\r\n',
  '0\r\n\r\n',
  '%00',
  '%2e%2e/',
  '[::1]',
  ':99999',
  'HTTP/1.1',
  'HTTP/0.9',
  'a'.repeat(5000),
];

function mutate(input: string, random: () => number): string {
  let out = input;
  const rounds = 1 + Math.floor(random() * 4);
  for (let i = 0; i < rounds; i++) {
    const at = Math.floor(random() * (out.length + 1));
    switch (Math.floor(random() * 6)) {
      case 0: // flip one byte
        out = out.slice(0, at) + String.fromCharCode(Math.floor(random() * 256)) + out.slice(at + 1);
        break;
      case 1: // insert a token
        out = out.slice(0, at) + TOKENS[Math.floor(random() * TOKENS.length)] + out.slice(at);
        break;
      case 2: // delete a span
        out = out.slice(0, at) + out.slice(at + Math.floor(random() * 8));
        break;
      case 3: // duplicate a line
        {
          const lines = out.split('\r\n');
          const line = lines[Math.floor(random() * lines.length)] ?? '';
          lines.splice(Math.floor(random() * lines.length), 0, line);
          out = lines.join('\r\n');
        }
        break;
      case 4: // change case
        out = out.slice(0, at) + out.slice(at, at + 12).toUpperCase() + out.slice(at + 12);
        break;
      default: // truncate
        out = out.slice(0, Math.max(1, at));
    }
  }
  return out;
}

const EXPECTED = new Set([0, 100, 200, 400, 403, 404, 405, 408, 409, 413, 414, 431, 501, 502, 504, 505, 508]);

async function main() {
  const { values } = parseArgs({
    options: {
      minutes: { type: 'string', default: '3' },
      seed: { type: 'string', default: String(Date.now() % 1_000_000) },
      concurrency: { type: 'string', default: '64' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: node services/proxy/dist/fuzz/request-fuzz.js [--minutes 3] [--seed N] [--concurrency 64] [--json]',
    );
    return;
  }
  const deadline = Date.now() + Number(values.minutes) * 60_000;
  const random = rng(Number(values.seed));
  const findings = mkdtempSync(join(tmpdir(), 'moat-fuzz-'));
  const origin = await startOrigin();
  const host = `127.0.0.1:${origin.port}`;
  const h = await startProxyHarness({ policy: POLICY });
  const corpus = seeds(host);
  const statuses = new Map<number, number>();
  const problems: { kind: string; file: string }[] = [];
  let sent = 0;
  const started = Date.now();
  const save = (kind: string, input: string) => {
    const file = join(findings, `${kind}-${problems.length}.bin`);
    writeFileSync(file, input, 'latin1');
    problems.push({ kind, file });
  };

  try {
    while (Date.now() < deadline && problems.length < 20) {
      const batch = Array.from({ length: Number(values.concurrency) }, () =>
        mutate(corpus[Math.floor(random() * corpus.length)] ?? '', random),
      );
      const replies = await Promise.all(
        batch.map((input) => rawExchange(h.proxyPort, Buffer.from(input, 'latin1'), 400)),
      );
      replies.forEach((raw, i) => {
        const status = statusOf(raw);
        statuses.set(status, (statuses.get(status) ?? 0) + 1);
        if (!EXPECTED.has(status) || status === 500) save(`status-${status}`, batch[i] ?? '');
      });
      sent += batch.length;
      if (origin.requests.some((r) => r.url.includes('SMUGGLED'))) {
        for (const input of batch) save('smuggled', input);
        origin.requests.length = 0;
      }
      origin.requests.length = 0;
      if (h.proc.child.exitCode !== null) {
        for (const input of batch) save('crash', input);
        break;
      }
      const healthy = await fetch(`http://127.0.0.1:${h.httpPort}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!healthy) {
        for (const input of batch) save('unhealthy', input);
        break;
      }
      if (!values.json && sent % 2000 < batch.length) {
        process.stderr.write(
          `\r${sent} inputs, ${Math.round((Date.now() - started) / 1000)} s, ${problems.length} problems `,
        );
      }
    }
  } finally {
    await h.stop();
    await origin.close();
  }
  const report = {
    seed: Number(values.seed),
    seconds: Math.round((Date.now() - started) / 1000),
    inputs: sent,
    perSecond: Math.round(sent / ((Date.now() - started) / 1000)),
    statuses: Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])),
    problems,
    findings: problems.length ? findings : undefined,
  };
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    process.stderr.write('\n');
    console.log(
      `fuzzed ${report.inputs} inputs in ${report.seconds} s (${report.perSecond}/s), seed ${report.seed}`,
    );
    console.log(
      `responses by status: ${JSON.stringify(report.statuses)} (0 = connection closed without a response)`,
    );
    console.log(
      problems.length
        ? `PROBLEMS: ${problems.length}, inputs saved in ${findings}`
        : 'no crash, no 500, no smuggled request',
    );
  }
  process.exitCode = problems.length ? 1 : 0;
}

main().catch((err: unknown) => {
  console.error(`fuzz run failed: ${(err as Error).message}`);
  process.exit(1);
});
