import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { moatEventSchema } from '@moat/log';
import {
  type Origin,
  type ProxyHarness,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from './testing/harness.js';

/** The test policy: one permit rule for the origin's port through a UTM policy, everything else denied. */
function policy(originPort: number, extra = ''): string {
  return `
apiVersion: moat/v1
kind: Policy
metadata: { name: proxy-test }
objects:
  services:
    origin-port: { protocol: tcp, ports: ${originPort} }
  addresses:
    loopback: 127.0.0.0/8
  urlPatterns:
    lab-blocked: [blocked.test, "127.0.0.1/private/"]
    lab-allowed: ["127.0.0.1/private/but-allowed"]
  urlCategories:
    gambling: { domains: [casino.test] }
  extensionLists:
    executables: [exe, msi]
profiles:
  webFiltering:
    default:
      blockCategories: [gambling]
      blockUrlPatterns: [lab-blocked]
      allowUrlPatterns: [lab-allowed]
      blockPageMessage: Blocked by the test policy.
  contentFiltering:
    default:
      blockExtensions: executables
      blockMimeTypes: [application/x-msdownload, video/*]
      maxRequestBodySize: 100KiB
      maxResponseBodySize: 1MiB
utmPolicies:
  web:
    http: { webFiltering: default, contentFiltering: default }
    https: { webFiltering: default }
securityRules:
  - name: to-origin
    fromZones: any
    toZones: any
    source: loopback
    destination: any
    service: [origin-port, http, https]
    action: permit
    utmPolicy: web
${extra}`;
}

describe('proxy', () => {
  let origin: Origin;
  let h: ProxyHarness;
  let base: string;

  before(async () => {
    origin = await startOrigin({
      '/fake-text': (_req, _body, res) => {
        // a Windows executable declared as text: only the first bytes tell the truth
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(
          Buffer.concat([Buffer.from('MZ'), Buffer.alloc(62), Buffer.from('PE\0\0'), Buffer.alloc(4000, 1)]),
        );
      },
      '/video': (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'video/mp4' });
        res.end('not really a video');
      },
      '/download': (_req, _body, res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-disposition': 'attachment; filename="setup.exe"',
        });
        res.end('payload');
      },
      '/chunked-big': (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const chunk = Buffer.alloc(256 * 1024, 'y');
        for (let i = 0; i < 8; i++) res.write(chunk);
        res.end();
      },
      '/slow': (_req, _body, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('first ');
        setTimeout(() => res.end('last'), 700); // under the 1 s idle timeout
      },
      '/hang': () => {
        // never answers: the proxy's timeout must
      },
      '/hop': (req, _body, res) => {
        res.writeHead(200, {
          'content-type': 'application/json',
          connection: 'x-private',
          'x-private': 'secret',
          'keep-alive': 'timeout=5',
        });
        res.end(JSON.stringify(req.headers));
      },
    });
    base = `http://127.0.0.1:${origin.port}`;
    h = await startProxyHarness({
      policy: policy(origin.port),
      env: { MOAT_PROXY_UPSTREAM_IDLE_BODY_TIMEOUT: '1s', MOAT_PROXY_CONNECT_TIMEOUT: '1s' },
    });
  });

  after(async () => {
    await h?.stop();
    await origin?.close();
  });

  test('forwarding - an allowed request reaches the origin and the response comes back intact', async () => {
    const reply = await viaProxy(h.proxyPort, `${base}/bytes/100000`);
    assert.equal(reply.status, 200);
    assert.equal(reply.body.length, 100_000);
    assert.equal(reply.headers['content-length'], '100000');
    assert.match(String(reply.headers.via), /1\.1 moat/);
    const seen = origin.requests.at(-1);
    assert.equal(seen?.url, '/bytes/100000', 'the origin gets origin-form, not the absolute URI');
    assert.match(String(seen?.headers.via), /1\.1 moat/);
  });

  test('forwarding - hop-by-hop headers are removed in both directions, end-to-end ones kept', async () => {
    const reply = await viaProxy(h.proxyPort, `${base}/hop`, {
      headers: {
        connection: 'x-client-private',
        'x-client-private': 'a',
        'proxy-connection': 'keep-alive',
        'x-end-to-end': 'kept',
        te: 'trailers',
      },
    });
    const seen = JSON.parse(reply.body.toString()) as Record<string, string>;
    assert.equal(seen['x-client-private'], undefined);
    assert.equal(seen['proxy-connection'], undefined);
    assert.equal(seen.te, undefined);
    assert.equal(seen['x-end-to-end'], 'kept');
    assert.equal(reply.headers['x-private'], undefined, 'a header the origin named in Connection is dropped');
    assert.notEqual(reply.headers['keep-alive'], 'timeout=5', "the origin's Keep-Alive is not passed on");
  });

  test('forwarding - chunked and large request bodies arrive intact', async () => {
    const big = Buffer.alloc(90 * 1024, 'b');
    const reply = await viaProxy(h.proxyPort, `${base}/echo`, {
      method: 'POST',
      body: big,
      headers: { 'transfer-encoding': 'chunked' },
    });
    assert.equal(reply.status, 200);
    assert.equal(JSON.parse(reply.body.toString()).bodyLength, big.length);
    assert.equal(origin.requests.at(-1)?.body.equals(big), true);
  });

  test('web filtering - a blocked category gets a 403 block page naming it, with the trace id', async () => {
    const reply = await viaProxy(h.proxyPort, 'http://casino.test/');
    assert.equal(reply.status, 403);
    const text = reply.body.toString();
    assert.match(text, /blocked category "gambling"/);
    assert.match(text, /Category: gambling/);
    assert.match(text, /Security rule: to-origin/);
    assert.match(text, /Blocked by the test policy\./);
    const traceId = String(reply.headers['x-moat-trace-id']);
    assert.match(traceId, /^[0-9a-f]{32}$/);
    assert.ok(text.includes(`Trace ID: ${traceId}`));
    assert.match(String(reply.headers['content-type']), /text\/plain/);
  });

  test('web filtering - browsers get the block page as HTML, with everything escaped', async () => {
    const reply = await viaProxy(h.proxyPort, 'http://www.casino.test/<script>', {
      headers: { accept: 'text/html,*/*' },
    });
    assert.equal(reply.status, 403);
    assert.match(String(reply.headers['content-type']), /text\/html/);
    const html = reply.body.toString();
    assert.match(html, /<title>Access blocked<\/title>/);
    assert.ok(!html.includes('<script>'), 'the URL is escaped');
  });

  test('web filtering - URL patterns block, and allow patterns win over them', async () => {
    assert.equal((await viaProxy(h.proxyPort, 'http://blocked.test/')).status, 403);
    const privatePath = await viaProxy(h.proxyPort, `${base}/private/x`);
    assert.equal(privatePath.status, 403);
    assert.match(privatePath.body.toString(), /URL pattern: lab-blocked: 127\.0\.0\.1\/private\//);
    assert.equal((await viaProxy(h.proxyPort, `${base}/private/but-allowed`)).status, 200);
  });

  test('security rules - a port no rule permits is denied by default', async () => {
    const reply = await viaProxy(h.proxyPort, 'http://127.0.0.1:9/');
    assert.equal(reply.status, 403);
    assert.match(reply.body.toString(), /No security rule permits this connection/);
  });

  test('content filtering - extension in the URL is blocked before anything is sent upstream', async () => {
    const before = origin.requests.length;
    const reply = await viaProxy(h.proxyPort, `${base}/files/tool.EXE?x=1`);
    assert.equal(reply.status, 403);
    assert.match(reply.body.toString(), /extension "\.exe"/);
    assert.equal(origin.requests.length, before);
  });

  test('content filtering - declared MIME type, Content-Disposition name and sniffed type are checked', async () => {
    const video = await viaProxy(h.proxyPort, `${base}/video`);
    assert.equal(video.status, 403);
    assert.match(video.body.toString(), /video\/mp4/);
    const download = await viaProxy(h.proxyPort, `${base}/download`);
    assert.equal(download.status, 403);
    assert.match(download.body.toString(), /\.exe/);
    const disguised = await viaProxy(h.proxyPort, `${base}/fake-text`);
    assert.equal(disguised.status, 403);
    assert.match(disguised.body.toString(), /detected from its first bytes; the server declared text\/plain/);
  });

  test('content filtering - size limits: 413 for a large upload, 403 for a large declared response, cut when streamed', async () => {
    const upload = await viaProxy(h.proxyPort, `${base}/echo`, {
      method: 'POST',
      body: Buffer.alloc(200 * 1024),
    });
    assert.equal(upload.status, 413);
    const declared = await viaProxy(h.proxyPort, `${base}/bytes/${2 * 1024 * 1024}`);
    assert.equal(declared.status, 403);
    assert.match(declared.body.toString(), /exceeds the limit/);
    assert.ok(
      (await viaProxy(h.proxyPort, `${base}/chunked-big`)).cut,
      'a response that grows past the limit is cut off',
    );
  });

  test('upstream failures - 502 for refused and unknown hosts, 504 for a silent server, each explained', async () => {
    const policyWithAllPorts = policy(origin.port).replace(
      'service: [origin-port, http, https]',
      'service: any',
    );
    await h.applyPolicy(policyWithAllPorts);
    const refused = await viaProxy(h.proxyPort, 'http://127.0.0.1:1/');
    assert.equal(refused.status, 502);
    assert.match(refused.body.toString(), /refused the connection/);
    const unknown = await viaProxy(h.proxyPort, 'http://no-such-host.invalid/');
    assert.equal(unknown.status, 502);
    assert.match(unknown.body.toString(), /does not exist/);
    const silent = await viaProxy(h.proxyPort, `${base}/hang`);
    assert.equal(silent.status, 504);
    assert.match(silent.body.toString(), /sent no response within 1 s/);
  });

  test('CONNECT - an allowed tunnel splices bytes; a blocked host gets 403 and no tunnel', async () => {
    const tunnelled = await new Promise<string>((resolve, reject) => {
      const socket = connect(h.proxyPort, '127.0.0.1');
      let data = '';
      socket.on('data', (c: Buffer) => {
        data += c.toString();
        if (data.startsWith('HTTP/1.1 200') && data.includes('\r\n\r\n') && !data.includes('origin</body>')) {
          if (!data.includes('GET-SENT')) {
            data += 'GET-SENT';
            socket.write(`GET /tunnelled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
          }
        }
      });
      socket.on('end', () => resolve(data));
      socket.on('error', reject);
      socket.write(`CONNECT 127.0.0.1:${origin.port} HTTP/1.1\r\nHost: 127.0.0.1:${origin.port}\r\n\r\n`);
    });
    assert.match(tunnelled, /^HTTP\/1\.1 200 Connection established/);
    assert.match(tunnelled, /origin<\/body>/);
    assert.equal(origin.requests.at(-1)?.url, '/tunnelled');

    const blocked = await new Promise<string>((resolve) => {
      const socket = connect(h.proxyPort, '127.0.0.1');
      let data = '';
      socket.on('data', (c: Buffer) => {
        data += c.toString();
      });
      socket.on('close', () => resolve(data));
      socket.write('CONNECT casino.test:443 HTTP/1.1\r\nHost: casino.test:443\r\n\r\n');
    });
    assert.match(blocked, /^HTTP\/1\.1 403/);
    assert.match(blocked, /gambling/);
  });

  test('events - a blocked request publishes events.web.blocked with rule, category, source and trace id', async () => {
    const reply = await viaProxy(h.proxyPort, 'http://casino.test/events');
    const traceId = String(reply.headers['x-moat-trace-id']);
    let event: Record<string, unknown> | undefined;
    for (let i = 0; i < 40 && !event; i++) {
      event = h.events.find((e) => e.traceId === traceId);
      if (!event) await sleep(50);
    }
    assert.ok(event, 'the event arrived on NATS');
    assert.equal(event.engine, 'web');
    assert.equal(event.action, 'blocked');
    assert.equal(event.tag, 'WEBFILTER_URL_BLOCKED');
    assert.equal(event.category, 'gambling');
    assert.equal(event.rule, 'to-origin');
    assert.equal(event.url, 'http://casino.test/events');
    assert.equal((event.source as { ip: string }).ip, '127.0.0.1');
    assert.ok(
      h.events.some((e) => e.action === 'allowed' && String(e.url).startsWith(base)),
      'allowed requests are events too',
    );
    for (const e of h.events) moatEventSchema.parse(e); // built unchecked on the hot path: the contract still holds
  });

  test('hot policy - a new version applies to new requests within 1 s; a transfer in flight finishes', async () => {
    const inFlight = viaProxy(h.proxyPort, `${base}/slow`);
    await sleep(100);
    const started = Date.now();
    await h.applyPolicy(
      policy(origin.port).replace(
        'gambling: { domains: [casino.test] }',
        'gambling: { domains: [casino.test, "127.0.0.1"] }',
      ),
    );
    let status = 0;
    while (Date.now() - started < 1000) {
      status = (await viaProxy(h.proxyPort, `${base}/`)).status;
      if (status === 403) break;
      await sleep(20);
    }
    assert.equal(status, 403, 'the new category applies within 1 s');
    const slow = await inFlight;
    assert.equal(slow.status, 200);
    assert.equal(
      slow.body.toString(),
      'first last',
      'the request that started under the old policy completed',
    );
    await h.applyPolicy(policy(origin.port));
  });

  test('no policy - a rejected policy leaves the running one in force', async () => {
    const before = (await viaProxy(h.proxyPort, 'http://casino.test/')).status;
    // a category whose list directory does not exist: the store accepts it, the proxy cannot load it
    const broken = policy(origin.port).replace(
      'gambling: { domains: [casino.test] }',
      'gambling: { source: /nonexistent/lists, categories: [gambling] }',
    );
    await assert.rejects(h.applyPolicy(broken), /applies/);
    assert.equal(before, 403);
    assert.equal(
      (await viaProxy(h.proxyPort, 'http://casino.test/')).status,
      403,
      'the previous lists still block',
    );
    assert.equal((await viaProxy(h.proxyPort, `${base}/`)).status, 200);
  });
});
