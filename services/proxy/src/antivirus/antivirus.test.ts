/**
 * Gateway antivirus end to end on loopback: the proxy process, real av-scanner workers and clamd
 * (the project's test signatures), NATS and Redis, tls-mediation for bumped HTTPS, an OpenTelemetry
 * Collector for the trace. Clients are Node's HTTP client and curl.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync, zstdCompressSync } from 'node:zlib';
import { EICAR, infectedSamples, type Sample } from '@moat/clamav';
import { startClamd, type TestClamd } from '@moat/clamav/testing';
import { freePort, type OtelCollector, startOtelCollector, waitFor } from '@moat/testkit';
import { type AvScanner, startAvScanner } from '../testing/av.js';
import {
  type Origin,
  type ProxyHarness,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from '../testing/harness.js';
import {
  createTestPki,
  curlViaProxy,
  type ServiceTls,
  serviceTls,
  startTlsMediation,
  startTlsOrigin,
  type TestPki,
  type TlsMediation,
  type TlsOrigin,
} from '../testing/tls.js';

const policy = (antivirus: string) => `
apiVersion: moat/v1
kind: Policy
metadata: { name: av-test }
objects:
  addresses: { loopback: 127.0.0.0/8 }
profiles:
  antivirus:
    av:
${antivirus}
  tlsInspection:
    default: { mode: bump }
utmPolicies:
  web:
    http: { antivirus: av }
    https: { antivirus: av, tlsInspection: default }
securityRules:
  - { name: loopback-web, fromZones: any, toZones: any, source: loopback, destination: any, service: any, action: permit, utmPolicy: web }
`;

const STRICT = `      maxScanSize: 16MiB
      timeoutMs: 3000
      scanUploads: true`;

/** EICAR in encodings clamd cannot read itself (the proxy decodes them for the scan). */
function encodedRoutes(): Record<string, (req: IncomingMessage, body: Buffer, res: ServerResponse) => void> {
  const eicar = Buffer.concat([EICAR, Buffer.from('\n')]);
  const send =
    (encoding: string, body: Buffer) => (_req: IncomingMessage, _b: Buffer, res: ServerResponse) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-encoding': encoding,
        'content-length': body.length,
      });
      res.end(body);
    };
  return {
    '/encoded/br': send('br', brotliCompressSync(eicar)),
    '/encoded/zstd': send('zstd', zstdCompressSync(eicar)),
    '/encoded/deflate': send('deflate', deflateSync(eicar)),
    '/encoded/deflate-raw': send('deflate', deflateRawSync(eicar)),
    '/encoded/gzip-br': send('gzip, br', brotliCompressSync(gzipSync(eicar))),
    '/encoded/compress': send('compress', eicar),
    '/encoded/br-bomb': send('br', brotliCompressSync(Buffer.alloc(64 * 2 ** 20))),
  };
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const eventually = <T>(find: () => T | undefined, what: string): Promise<T> =>
  waitFor(what, async () => find() !== undefined, { timeoutMs: 10_000 }).then(() => find() as T);

describe('antivirus (proxy → NATS → av-scanner → clamd)', () => {
  let clamd: TestClamd;
  let origin: Origin;
  let tlsOrigin: TlsOrigin;
  let pki: TestPki;
  let grpcTls: ServiceTls;
  let mediation: TlsMediation;
  let harness: ProxyHarness;
  let scanner: AvScanner;
  let collector: OtelCollector;
  let samples: Sample[];
  const clean10MiB = randomBytes(10 * 2 ** 20);
  const files = new Map<string, { content: Buffer; type: string; encoding?: string }>();

  const serveFile = (path: string, res: import('node:http').ServerResponse, chunked = false) => {
    const file = files.get(path);
    if (!file) return false;
    res.writeHead(200, {
      'content-type': file.type,
      ...(file.encoding ? { 'content-encoding': file.encoding } : {}),
      ...(chunked ? {} : { 'content-length': file.content.length }),
    });
    res.end(file.content);
    return true;
  };

  before(async () => {
    try {
      await setUp();
    } catch (err) {
      await tearDown();
      throw err;
    }
  });
  after(() => tearDown());

  async function setUp() {
    samples = await infectedSamples();
    for (const s of samples) files.set(`/samples/${s.name}`, { content: s.content, type: s.contentType });
    files.set('/clean-10m.bin', { content: clean10MiB, type: 'application/octet-stream' });
    clamd = await startClamd();
    collector = await startOtelCollector();
    origin = await startOrigin({
      '/chunked/eicar.com': (_req, _body, res) => void serveFile('/samples/eicar.com', res, true),
      ...encodedRoutes(),
      // the whole body at once, the end of the response 1.5 s later: held by the proxy meanwhile
      '/held-10m': (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.write(clean10MiB);
        setTimeout(() => res.end(), 1500);
      },
      '/ranged/eicar.com': (req, _body, res) => {
        // honours Range: a scanner fed only the first bytes would see no signature
        const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        const body = Buffer.concat([EICAR, Buffer.alloc(1000, ' ')]);
        if (!range) {
          res.writeHead(200, { 'content-length': body.length, 'accept-ranges': 'bytes' });
          return void res.end(body);
        }
        const part = body.subarray(Number(range[1]), Number(range[2]) + 1);
        res.writeHead(206, {
          'content-length': part.length,
          'content-range': `bytes ${range[1]}-${range[2]}/${body.length}`,
        });
        res.end(part);
      },
      // content a test sets just before fetching it (fresh to the verdict cache)
      ...Object.fromEntries(
        [
          '/fresh/a',
          '/fresh/b',
          '/fresh/c',
          '/disguised/readme.txt',
          '/disguised/notes.txt',
          '/disguised/packed.txt',
          '/disguised/page.html',
        ].map((path) => [path, (_req, _body, res) => void serveFile(path, res)]),
      ),
      ...Object.fromEntries(
        [...files.keys()].map((path) => [path, (_req, _body, res) => void serveFile(path, res)]),
      ),
    });
    pki = await createTestPki();
    tlsOrigin = await startTlsOrigin(await pki.issue('origin', ['localhost']), {}, (req, res) =>
      serveFile(req.url ?? '', res),
    );
    grpcTls = await serviceTls();
    const grpcPort = await freePort();
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' };
    harness = await startProxyHarness({
      policy: policy(STRICT),
      env: {
        MOAT_PROXY_TLS_MEDIATION_ADDRESS: `127.0.0.1:${grpcPort}`,
        MOAT_PROXY_UPSTREAM_CA_FILES: pki.caFile,
        // room for one 10 MiB body held for its verdict, not two
        MOAT_PROXY_AV_HOLD_LIMIT: '12MiB',
        ...grpcTls.proxyEnv,
        ...otel,
      },
    });
    mediation = await startTlsMediation({
      grpcPort,
      natsUrl: harness.nats.url,
      redisUrl: harness.redis.url,
      grpcTls: grpcTls.mediation,
    });
    scanner = await startAvScanner({
      natsUrl: harness.nats.url,
      redisUrl: harness.redis.url,
      clamd,
      env: otel,
    });
  }

  async function tearDown() {
    await harness?.stop();
    await scanner?.stop();
    await mediation?.remove();
    await origin?.close();
    await tlsOrigin?.close();
    await clamd?.dispose();
    await collector?.stop();
    pki?.remove();
    grpcTls?.remove();
  }

  const url = (path: string) => `http://127.0.0.1:${origin.port}${path}`;
  const metric = async (pattern: RegExp) => {
    const text = await (await fetch(`http://127.0.0.1:${harness.httpPort}/metrics`)).text();
    return Number(pattern.exec(text)?.[1] ?? 0);
  };

  test('antivirus - EICAR over HTTP, alone and inside zip, nested zip, gzip, tar and tar.gz: blocked with a page naming the signature and the trace id', async () => {
    for (const sample of samples) {
      const reply = await viaProxy(harness.proxyPort, url(`/samples/${sample.name}`));
      assert.equal(reply.status, 403, `${sample.name}: ${reply.body.toString()}`);
      const page = reply.body.toString();
      assert.match(page, new RegExp(sample.signature.replaceAll('.', '\\.')), sample.name);
      assert.match(reply.traceId, /^[0-9a-f]{32}$/);
      assert.ok(page.includes(reply.traceId), 'the page names the trace id');
      assert.ok(!reply.body.includes(sample.content), 'not a byte of the file reached the client');
    }
    const chunked = await viaProxy(harness.proxyPort, url('/chunked/eicar.com'));
    assert.equal(chunked.status, 403, 'a body without Content-Length is held and scanned too');
  });

  test('antivirus - EICAR in encodings clamd cannot read (br, zstd, deflate, raw deflate, gzip+br) is decoded for the scan and blocked', async () => {
    for (const path of [
      '/encoded/br',
      '/encoded/zstd',
      '/encoded/deflate',
      '/encoded/deflate-raw',
      '/encoded/gzip-br',
    ]) {
      const reply = await viaProxy(harness.proxyPort, url(path));
      assert.equal(reply.status, 403, `${path}: ${reply.body.toString()}`);
      assert.match(reply.body.toString(), /Moat\.Test\.EICAR-Body\.UNOFFICIAL/, path);
    }
    const unknown = await viaProxy(harness.proxyPort, url('/encoded/compress'));
    assert.equal(unknown.status, 403, 'an encoding the scanner cannot read is not delivered unscanned');
    assert.match(unknown.body.toString(), /content encoding "compress" cannot be scanned/);
    const bomb = await viaProxy(harness.proxyPort, url('/encoded/br-bomb'));
    assert.equal(
      bomb.status,
      200,
      'a 64 MiB expansion is over maxScanSize (16 MiB): overSizeAction allow, recorded',
    );
    await eventually(
      () => harness.events.find((e) => e.action === 'unscanned' && e.traceId === bomb.traceId),
      'the unscanned event for the bomb',
    );
  });

  test('antivirus - a Range request is fetched whole for the scan: the first bytes of EICAR cannot slip through', async () => {
    const reply = await viaProxy(harness.proxyPort, url('/ranged/eicar.com'), {
      headers: { range: 'bytes=0-20' },
    });
    assert.equal(reply.status, 403);
    const seen = origin.requests.filter((r) => r.url === '/ranged/eicar.com').at(-1);
    assert.equal(seen?.headers.range, undefined, 'the proxy asked the origin for the whole file');
  });

  test('antivirus - a blocked download is an events.av.blocked event from the proxy and an events.av.infected event from the worker, in one trace', async () => {
    const reply = await viaProxy(harness.proxyPort, url('/samples/eicar.zip'));
    assert.equal(reply.status, 403);
    const blocked = await eventually(
      () =>
        harness.events.find(
          (e) => e.tag === 'AV_VIRUS_DETECTED' && e.traceId === reply.traceId && e.service === 'proxy',
        ),
      'the proxy event',
    );
    assert.equal(blocked.engine, 'av');
    assert.equal(blocked.action, 'blocked');
    assert.equal(blocked.signature, 'Moat.Test.EICAR-Body.UNOFFICIAL');
    const spans = await collector.waitForSpans(
      (all) =>
        all.some((s) => s.traceId === reply.traceId && s.name === 'av-scanner.scan') ||
        all.some(
          (s) =>
            s.traceId === reply.traceId && s.name === 'av.scan' && s.attributes['moat.av.cached'] === true,
        ),
      15_000,
    );
    const trace = spans.filter((s) => s.traceId === reply.traceId);
    const server = trace.find((s) => s.kind === 'SERVER');
    const scan = trace.find((s) => s.name === 'av.scan');
    assert.ok(server && scan, `spans: ${trace.map((s) => s.name).join(', ')}`);
    assert.equal(scan.parentSpanId, server.spanId, 'the scan is a step of the request');
    assert.equal(scan.attributes['moat.av.result'], 'infected');
    assert.equal(server.attributes['moat.engine'], 'antivirus');
    assert.equal(server.attributes['moat.signature'], 'Moat.Test.EICAR-Body.UNOFFICIAL');
    assert.equal(server.status.code, 'ERROR');
  });

  test('antivirus - the worker span continues the proxy trace, and a repeated file is a cache hit the trace shows', async () => {
    const content = Buffer.concat([EICAR, randomBytes(64)]);
    files.set('/fresh-eicar.bin', { content, type: 'application/octet-stream' });
    const reply1 = await curlViaProxy(
      harness.proxyPort,
      `https://localhost:${tlsOrigin.port}/fresh-eicar.bin`,
      ['--cacert', mediation.caFile, '-D', '-'],
    );
    assert.equal(reply1.status, 403, reply1.stderr);
    const trace1 = /x-moat-trace-id: ([0-9a-f]{32})/i.exec(reply1.body)?.[1] ?? '';
    const spans = await collector.waitForSpans(
      (all) => all.some((s) => s.traceId === trace1 && s.name === 'av-scanner.scan'),
      15_000,
    );
    const worker = spans.find((s) => s.traceId === trace1 && s.name === 'av-scanner.scan');
    const proxyScan = spans.find((s) => s.traceId === trace1 && s.name === 'av.scan');
    assert.ok(worker && proxyScan);
    assert.equal(worker.serviceName, 'av-scanner');
    assert.equal(worker.parentSpanId, proxyScan.spanId, 'the worker span is a child of the proxy scan span');
    assert.equal(worker.attributes['moat.signature'], 'Moat.Test.EICAR-Body.UNOFFICIAL');

    const reply2 = await curlViaProxy(
      harness.proxyPort,
      `https://localhost:${tlsOrigin.port}/fresh-eicar.bin`,
      ['--cacert', mediation.caFile, '-D', '-'],
    );
    assert.equal(reply2.status, 403);
    const trace2 = /x-moat-trace-id: ([0-9a-f]{32})/i.exec(reply2.body)?.[1] ?? '';
    const spans2 = await collector.waitForSpans(
      (all) => all.some((s) => s.traceId === trace2 && s.name === 'av.scan'),
      15_000,
    );
    const cached = spans2.find((s) => s.traceId === trace2 && s.name === 'av.scan');
    assert.equal(
      cached?.attributes['moat.av.cached'],
      true,
      'the second download was answered from the cache',
    );
    assert.equal(cached?.attributes['moat.av.worker'], 'proxy');
  });

  test('antivirus - EICAR over bumped HTTPS: the block page arrives over TLS, naming the signature', async () => {
    for (const name of ['eicar.com', 'eicar-nested.zip']) {
      const reply = await curlViaProxy(
        harness.proxyPort,
        `https://localhost:${tlsOrigin.port}/samples/${name}`,
        ['--cacert', mediation.caFile],
      );
      assert.equal(reply.status, 403, reply.stderr);
      assert.match(reply.body, /Moat\.Test\.EICAR-Body\.UNOFFICIAL/);
    }
  });

  test('antivirus - a clean 10 MiB file passes intact (sha256 equal at the client), with its length', async () => {
    for (const target of [url('/clean-10m.bin')]) {
      const reply = await viaProxy(harness.proxyPort, target);
      assert.equal(reply.status, 200);
      assert.equal(reply.body.length, clean10MiB.length);
      assert.equal(sha256(reply.body), sha256(clean10MiB));
      assert.equal(reply.headers['content-length'], String(clean10MiB.length));
    }
    const out = join(mkdtempSync(join(tmpdir(), 'moat-av-')), 'clean.bin');
    const tls = await curlViaProxy(harness.proxyPort, `https://localhost:${tlsOrigin.port}/clean-10m.bin`, [
      '--cacert',
      mediation.caFile,
      '-o',
      out,
    ]);
    assert.equal(tls.status, 200, tls.stderr);
    assert.equal(sha256(readFileSync(out)), sha256(clean10MiB), 'intact through bumped HTTPS too');
    rmSync(join(out, '..'), { recursive: true, force: true });
  });

  test('antivirus - the memory held for verdicts is bounded: a download or an upload beyond the budget gets the fail mode, and the budget comes back', async () => {
    const first = viaProxy(harness.proxyPort, url('/held-10m'));
    await new Promise((r) => setTimeout(r, 700)); // its 10 MiB are held now
    const refused = await viaProxy(harness.proxyPort, url('/clean-10m.bin'));
    assert.equal(refused.status, 403, 'no room for a second 10 MiB body');
    assert.match(refused.body.toString(), /MOAT_PROXY_AV_HOLD_LIMIT/);
    const seen = origin.requests.length;
    const upload = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: clean10MiB,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(upload.status, 403, 'no room to hold a 10 MiB upload either');
    assert.match(upload.body.toString(), /MOAT_PROXY_AV_HOLD_LIMIT/);
    assert.equal(origin.requests.length, seen, 'the refused upload never went upstream');
    const delivered = await first;
    assert.equal(delivered.status, 200);
    assert.equal(sha256(delivered.body), sha256(clean10MiB));
    const again = await viaProxy(harness.proxyPort, url('/clean-10m.bin'));
    assert.equal(again.status, 200, 'the budget was given back');
    const uploaded = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: clean10MiB,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(uploaded.status, 200, 'the upload fits once nothing else is held');
    assert.equal(JSON.parse(uploaded.body.toString()).bodyLength, clean10MiB.length);
  });

  test('antivirus - the same file twice: the second download is a cache hit (metric and event say so)', async () => {
    const before = await metric(
      /moat_proxy_av_verdicts_total\{[^}]*result="clean"[^}]*cached="true"[^}]*\} (\d+)/,
    );
    const path = '/clean-10m.bin';
    await viaProxy(harness.proxyPort, url(path));
    const again = await viaProxy(harness.proxyPort, url(path));
    assert.equal(again.status, 200);
    assert.equal(sha256(again.body), sha256(clean10MiB));
    const afterCount = await metric(
      /moat_proxy_av_verdicts_total\{[^}]*result="clean"[^}]*cached="true"[^}]*\} (\d+)/,
    );
    assert.ok(afterCount >= before + 2, `cache hits ${before} → ${afterCount}`);
  });

  test('antivirus - uploads are scanned before anything goes upstream: EICAR refused, a clean upload passes', async () => {
    const seen = origin.requests.length;
    const infected = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: EICAR,
      headers: { 'content-type': 'application/octet-stream' },
    });
    assert.equal(infected.status, 403);
    assert.match(infected.body.toString(), /upload contains Moat\.Test\.EICAR-Body\.UNOFFICIAL/);
    assert.equal(origin.requests.length, seen, 'the origin never saw the infected upload');
    const clean = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: randomBytes(100_000),
    });
    assert.equal(clean.status, 200);
    assert.equal(JSON.parse(clean.body.toString()).bodyLength, 100_000);
  });

  test('antivirus - clamd stopped: fail-closed page, event, alert and metric; clamd back: scanning resumes without restarting the proxy', async () => {
    await clamd.stop();
    try {
      const unavailableBefore = await metric(/^moat_proxy_av_unavailable_total\{[^}]*\} (\d+)/m);
      const content = Buffer.concat([randomBytes(100), EICAR]);
      files.set('/fresh/b', { content, type: 'application/octet-stream' });
      const reply = await viaProxy(harness.proxyPort, url('/fresh/b'));
      assert.equal(reply.status, 503);
      assert.match(reply.body.toString(), /could not be scanned for viruses/);
      assert.match(reply.body.toString(), /no verdict within 3000 ms/);
      assert.ok(!reply.body.includes(content), 'nothing of the unscanned file reached the client');
      const event = await eventually(
        () => harness.events.find((e) => e.tag === 'AV_SCANNER_UNAVAILABLE' && e.traceId === reply.traceId),
        'the blocked event',
      );
      assert.equal(event.engine, 'av');
      const alert = await eventually(
        () => harness.events.find((e) => e.action === 'unavailable' && e.severity === 'critical'),
        'the alert',
      );
      assert.equal(alert.engine, 'av');
      assert.equal(await metric(/^moat_proxy_av_unavailable_total\{[^}]*\} (\d+)/m), unavailableBefore + 1);
      const clean = await viaProxy(harness.proxyPort, url('/clean-10m.bin'));
      assert.equal(clean.status, 200, 'a cached clean verdict still answers without a scanner');
    } finally {
      await clamd.start();
    }
    await waitFor(
      'the worker ready',
      async () => (await fetch(`http://127.0.0.1:${scanner.httpPort}/readyz`)).ok,
      {
        timeoutMs: 15_000,
      },
    );
    const reply = await viaProxy(harness.proxyPort, url('/fresh/b'));
    assert.equal(reply.status, 403, 'the same file, scanned now that clamd is back');
    assert.match(reply.body.toString(), /Moat\.Test\.EICAR-Body\.UNOFFICIAL/);
  });

  test('antivirus - over maxScanSize: blocked when the profile says block, delivered and recorded when it says allow', async () => {
    await harness.applyPolicy(
      policy(
        '      maxScanSize: 1KiB\n      overSizeAction: block\n      scanUploads: true\n      timeoutMs: 3000',
      ),
    );
    const blocked = await viaProxy(harness.proxyPort, url('/clean-10m.bin'));
    assert.equal(blocked.status, 403);
    assert.match(blocked.body.toString(), /larger than antivirus profile "av" scans/);
    const chunked = await viaProxy(harness.proxyPort, url('/samples/eicar.tar'));
    assert.equal(chunked.status, 403, 'a 2 KiB tar over the 1 KiB limit');
    const seen = origin.requests.length;
    const bigUpload = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: randomBytes(64 * 1024),
    });
    assert.equal(bigUpload.status, 403, 'an upload declared over maxScanSize');
    assert.equal(origin.requests.length, seen, 'never sent upstream');
    await harness.applyPolicy(
      policy(
        '      maxScanSize: 1KiB\n      overSizeAction: allow\n      scanUploads: true\n      timeoutMs: 3000',
      ),
    );
    const allowed = await viaProxy(harness.proxyPort, url('/clean-10m.bin'));
    assert.equal(allowed.status, 200);
    assert.equal(sha256(allowed.body), sha256(clean10MiB));
    const upload = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: randomBytes(64 * 1024),
    });
    assert.equal(upload.status, 200, 'overSizeAction allow: the upload goes upstream unscanned');
    assert.equal(JSON.parse(upload.body.toString()).bodyLength, 64 * 1024);
    const event = await eventually(
      () => harness.events.find((e) => e.action === 'unscanned' && e.traceId === allowed.traceId),
      'the unscanned event',
    );
    assert.match(String(event.reason), /over maxScanSize/);
    await harness.applyPolicy(policy(STRICT));
  });

  test('antivirus - fail-open only when configured: no verdict delivers the file and records it as unscanned', async () => {
    await harness.applyPolicy(policy('      failMode: open\n      timeoutMs: 500'));
    clamd.freeze();
    try {
      const content = Buffer.concat([randomBytes(100), EICAR]);
      files.set('/fresh/c', { content, type: 'application/octet-stream' });
      const reply = await viaProxy(harness.proxyPort, url('/fresh/c'));
      assert.equal(reply.status, 200, 'delivered unscanned, as the profile says');
      assert.ok(reply.body.equals(content));
      const event = await eventually(
        () => harness.events.find((e) => e.action === 'unscanned' && e.traceId === reply.traceId),
        'the unscanned event',
      );
      assert.match(String(event.reason), /fail-open/);
    } finally {
      clamd.thaw();
      await harness.applyPolicy(policy(STRICT));
    }
  });

  test('antivirus - scanExtensions narrows scanning: a .bin is not scanned, a .zip is, and so is a zip disguised as text/plain (sniffed)', async () => {
    await harness.applyPolicy(policy('      scanExtensions: [zip]\n      timeoutMs: 3000'));
    const notScanned = await viaProxy(harness.proxyPort, url('/samples/hash-sample.bin'));
    assert.equal(notScanned.status, 200);
    const scanned = await viaProxy(harness.proxyPort, url('/samples/eicar.zip'));
    assert.equal(scanned.status, 403);
    // a zip the server calls text/plain, at a .txt path: its first bytes say zip, so it is scanned
    const zip = samples.find((x) => x.name === 'eicar.zip');
    assert.ok(zip);
    files.set('/disguised/readme.txt', { content: zip.content, type: 'text/plain' });
    const disguised = await viaProxy(harness.proxyPort, url('/disguised/readme.txt'));
    assert.equal(disguised.status, 403, 'a zip labelled text/plain is still scanned');
    assert.match(disguised.body.toString(), /Moat\.Test\.EICAR/);
    // plain text stays unscanned, and arrives whole
    const text = Buffer.from('just text, no magic bytes\n'.repeat(100));
    files.set('/disguised/notes.txt', { content: text, type: 'text/plain' });
    const scansBefore = await metric(
      /moat_proxy_av_verdicts_total\{[^}]*result="clean"[^}]*cached="false"[^}]*\} (\d+)/,
    );
    const plain = await viaProxy(harness.proxyPort, url('/disguised/notes.txt'));
    assert.equal(plain.status, 200);
    assert.deepEqual(plain.body, text);
    const scansAfter = await metric(
      /moat_proxy_av_verdicts_total\{[^}]*result="clean"[^}]*cached="false"[^}]*\} (\d+)/,
    );
    assert.equal(scansAfter, scansBefore, 'text is not scanned under scanExtensions [zip]');
    // the same zip sent br-encoded: sniffed after decoding, so still a zip, and scanned
    files.set('/disguised/packed.txt', {
      content: brotliCompressSync(zip.content),
      type: 'text/plain',
      encoding: 'br',
    });
    const packed = await viaProxy(harness.proxyPort, url('/disguised/packed.txt'));
    assert.equal(packed.status, 403, 'a br-encoded zip labelled text/plain is scanned');
    // a gzip-encoded page is text once decoded: delivered as sent, not scanned
    const page = gzipSync(Buffer.from('<!doctype html><p>hello</p>\n'.repeat(200)));
    files.set('/disguised/page.html', { content: page, type: 'text/html', encoding: 'gzip' });
    const html = await viaProxy(harness.proxyPort, url('/disguised/page.html'));
    assert.equal(html.status, 200);
    assert.deepEqual(html.body, page, 'delivered exactly as the server sent it');
    const scansLater = await metric(
      /moat_proxy_av_verdicts_total\{[^}]*result="clean"[^}]*cached="false"[^}]*\} (\d+)/,
    );
    assert.equal(scansLater, scansBefore, 'a gzip-encoded page is not scanned under scanExtensions [zip]');
    // an upload form: the file inside is scanned whatever the request says
    await harness.applyPolicy(
      policy('      scanExtensions: [zip]\n      scanUploads: true\n      timeoutMs: 3000'),
    );
    const form = new FormData();
    form.append('note', 'hello');
    form.append(
      'file',
      new Blob([new Uint8Array(zip.content)], { type: 'application/octet-stream' }),
      'x.bin',
    );
    const encoded = new Response(form);
    const seen = origin.requests.length;
    const upload = await viaProxy(harness.proxyPort, url('/echo'), {
      method: 'POST',
      body: Buffer.from(await encoded.arrayBuffer()),
      headers: { 'content-type': encoded.headers.get('content-type') ?? '' },
    });
    assert.equal(upload.status, 403, 'a multipart upload is scanned under scanExtensions');
    assert.equal(origin.requests.length, seen, 'the infected form never went upstream');
    await harness.applyPolicy(policy(STRICT));
  });
});

describe('antivirus upload budget (its own proxy: a 1 MiB budget, 2 s client idle limit, no scanner)', () => {
  let harness: ProxyHarness;
  before(async () => {
    harness = await startProxyHarness({
      policy: policy('      scanUploads: true\n      timeoutMs: 1000'),
      env: { MOAT_PROXY_AV_HOLD_LIMIT: '1MiB', MOAT_PROXY_CLIENT_IDLE_TIMEOUT: '2s' },
    });
  });
  after(() => harness?.stop());

  test('antivirus - an upload that stalls while held is cut off after the idle limit, and its share of the budget comes back', async () => {
    const target = 'http://127.0.0.1:9/upload';
    // 900 KiB of a declared 2 MiB, then nothing: held for scanning, so it counts against the budget
    const stalled = connect(harness.proxyPort, '127.0.0.1');
    const closed = new Promise<number>((resolve) => {
      const started = Date.now();
      stalled.on('close', () => resolve(Date.now() - started));
    });
    stalled.on('error', () => undefined);
    stalled.write(
      `POST ${target} HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Type: application/octet-stream\r\nContent-Length: ${2 * 2 ** 20}\r\n\r\n`,
    );
    stalled.write(randomBytes(900 * 1024));
    await new Promise((r) => setTimeout(r, 300));
    const refused = await viaProxy(harness.proxyPort, target, {
      method: 'POST',
      body: randomBytes(500 * 1024),
    });
    assert.equal(refused.status, 403, 'no room while the stalled upload holds 900 KiB');
    assert.match(refused.body.toString(), /MOAT_PROXY_AV_HOLD_LIMIT/);
    const closedAfterMs = await closed;
    assert.ok(closedAfterMs < 6000, `the proxy closed the stalled upload after ${closedAfterMs} ms`);
    // room again: this one is held and goes to the (absent) scanner, so fail-closed 503, not busy
    const held = await viaProxy(harness.proxyPort, target, { method: 'POST', body: randomBytes(500 * 1024) });
    assert.equal(held.status, 503, held.body.toString().slice(0, 200));
    assert.match(held.body.toString(), /could not be scanned/);
  });
});
