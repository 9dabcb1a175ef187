/**
 * Malformed and ambiguous requests, sent as raw bytes: each must be refused with a 4xx, and none
 * may reach the origin — not as a request, and not even as a connection.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type Origin,
  type ProxyHarness,
  permitAllPolicy,
  rawExchange,
  startOrigin,
  startProxyHarness,
  statusOf,
} from './testing/harness.js';

const POLICY = permitAllPolicy('bad-input-test');

describe('bad input', () => {
  let origin: Origin;
  let h: ProxyHarness;
  let host: string;

  before(async () => {
    origin = await startOrigin();
    host = `127.0.0.1:${origin.port}`;
    h = await startProxyHarness({ policy: POLICY });
  });
  after(async () => {
    await h?.stop();
    await origin?.close();
  });
  beforeEach(() => {
    origin.requests.length = 0;
    origin.connections = 0;
  });

  /** Sends the bytes, expects `status`, and checks that the origin saw nothing at all. */
  async function refused(payload: string, status: number, expect?: RegExp) {
    const raw = await rawExchange(h.proxyPort, payload);
    assert.equal(statusOf(raw), status, `expected ${status}, got:\n${raw.slice(0, 300)}`);
    if (expect) assert.match(raw, expect);
    await sleep(50);
    assert.equal(
      origin.requests.length,
      0,
      `the origin received ${JSON.stringify(origin.requests.map((r) => r.url))}`,
    );
    assert.equal(origin.connections, 0, 'the origin was not even connected to');
  }

  const abs = (path = '/') => `http://${host}${path}`;

  test('request line - garbage, a missing version and a bad method are 400', async () => {
    await refused('GARBAGE\r\n\r\n', 400);
    await refused(`GET ${abs()}\r\nHost: ${host}\r\n\r\n`, 400);
    await refused(`GET ${abs()} HTTP/1.1 extra\r\nHost: ${host}\r\n\r\n`, 400);
    await refused(`G(T ${abs()} HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400);
    await refused(`GET ${abs()} HTTP/9.9\r\nHost: ${host}\r\n\r\n`, 400);
  });

  test('request target - origin-form on the explicit port, credentials, bad ports and schemes are 400', async () => {
    await refused(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400, /absolute URI/);
    await refused(`GET http://user:pw@${host}/ HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 400, /credentials/);
    await refused('GET http://127.0.0.1:99999/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400, /out of range/);
    await refused('GET ftp://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 400);
    await refused('GET http://exa mple.com/ HTTP/1.1\r\nHost: x\r\n\r\n', 400);
    await refused('GET http://bad_-.host!/ HTTP/1.1\r\nHost: x\r\n\r\n', 400);
  });

  test('headers - HTTP/1.1 without Host, obs-fold, NUL and space before the colon are 400', async () => {
    await refused(`GET ${abs()} HTTP/1.1\r\n\r\n`, 400);
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nX-Folded: a\r\n b\r\n\r\n`, 400);
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nX-Nul: a\0b\r\n\r\n`, 400);
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nX-Space : a\r\n\r\n`, 400);
  });

  test('headers - an oversized header section and too many fields are 431', async () => {
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nX-Big: ${'a'.repeat(40 * 1024)}\r\n\r\n`, 431);
    // 100 fields are allowed (Host + 99), 101 are not
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `X-H${i}: v`).join('\r\n');
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\n${fields(100)}\r\n\r\n`, 431, /more fields/);
    const atLimit = await rawExchange(
      h.proxyPort,
      `GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n${fields(98)}\r\n\r\n`,
    );
    assert.equal(statusOf(atLimit), 200, 'exactly 100 fields pass');
    origin.requests.length = 0;
    origin.connections = 0;
  });

  test('framing - CL.TE: Content-Length with chunked Transfer-Encoding is refused; the smuggled request goes nowhere', async () => {
    const smuggled = `GET /smuggled HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
    await refused(
      `POST ${abs('/a')} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${smuggled}`,
      400,
    );
  });

  test('framing - TE.CL: chunked before Content-Length is refused too', async () => {
    await refused(
      `POST ${abs('/a')} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n`,
      400,
    );
  });

  test('framing - TE.TE obfuscations are refused', async () => {
    const post = (te: string) =>
      `POST ${abs('/a')} HTTP/1.1\r\nHost: ${host}\r\n${te}\r\n\r\n5\r\nhello\r\n0\r\n\r\n`;
    await refused(post('Transfer-Encoding: xchunked'), 400);
    await refused(post('Transfer-Encoding: chunked, identity'), 400);
    await refused(post('Transfer-Encoding: identity'), 400);
    await refused(post('Transfer-Encoding : chunked'), 400);
    await refused(post('Transfer-Encoding:\x0bchunked'), 400);
    await refused(post('Transfer-Encoding: chunked\r\nTransfer-Encoding: x'), 400);
    await refused(post('Transfer-Encoding: chunked\r\nContent-Length: 5'), 400);
  });

  test('framing - duplicate or malformed Content-Length is refused', async () => {
    const post = (cl: string) => `POST ${abs('/a')} HTTP/1.1\r\nHost: ${host}\r\n${cl}\r\n\r\nhello`;
    await refused(post('Content-Length: 5\r\nContent-Length: 6'), 400);
    await refused(post('Content-Length: 5, 6'), 400);
    await refused(post('Content-Length: +5'), 400);
    await refused(post('Content-Length: -1'), 400);
    await refused(post('Content-Length: 0x5'), 400);
  });

  test('framing - bad chunk sizes and a missing chunk terminator are refused before the upstream is contacted', async () => {
    const post = (body: string) =>
      `POST ${abs('/a')} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked\r\n\r\n${body}`;
    await refused(post('zz\r\nhello\r\n0\r\n\r\n'), 400);
    await refused(post('5 ;\r\nhello\r\n0\r\n\r\n'), 400);
    await refused(post('-5\r\nhello\r\n0\r\n\r\n'), 400);
    await refused(post('ffffffffffffffffff\r\nhello\r\n0\r\n\r\n'), 400);
    await refused(post('5\r\nhelloXX0\r\n\r\n'), 400);
  });

  test('CONNECT - invalid targets are 400', async () => {
    await refused('CONNECT example.test HTTP/1.1\r\nHost: example.test\r\n\r\n', 400, /needs host:port/);
    await refused('CONNECT 127.0.0.1:0 HTTP/1.1\r\nHost: x\r\n\r\n', 400, /out of range/);
    await refused('CONNECT 127.0.0.1:70000 HTTP/1.1\r\nHost: x\r\n\r\n', 400);
    await refused('CONNECT user@127.0.0.1:443 HTTP/1.1\r\nHost: x\r\n\r\n', 400);
    await refused('CONNECT [::1:443 HTTP/1.1\r\nHost: x\r\n\r\n', 400);
    await refused('CONNECT /path HTTP/1.1\r\nHost: x\r\n\r\n', 400);
  });

  test('loops - a request addressed back through the proxy is refused with 508', async () => {
    await refused(`GET ${abs()} HTTP/1.1\r\nHost: ${host}\r\nVia: 1.1 moat\r\n\r\n`, 508);
  });

  test('after all of it - the proxy still serves a valid request', async () => {
    const raw = await rawExchange(
      h.proxyPort,
      `GET ${abs('/ok')} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(statusOf(raw), 200);
    assert.equal(origin.requests.at(-1)?.url, '/ok');
    assert.equal(h.proc.child.exitCode, null, 'the proxy process is alive');
  });
});
