/**
 * Bumping on loopback, end to end with real parts: the proxy process, the tls-mediation service
 * (its CA), HTTPS origins with their own CA, curl and openssl s_client as clients. The lab test
 * (lab-tls.test.ts) grades upstream validation against the lab's bad-certificate servers.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { createSecureContext, TLSSocket } from 'node:tls';
import { type ChannelCredentials, credentials, Metadata, status } from '@grpc/grpc-js';
import { tlsV1 as pb } from '@moat/proto';
import { freePort, runCommand } from '@moat/testkit';
import { type ProxyHarness, startProxyHarness } from '../testing/harness.js';
import {
  createTestPki,
  curlViaProxy,
  exchangeRaw,
  type ServiceTls,
  serviceTls,
  startTlsMediation,
  startTlsOrigin,
  type TestPki,
  type TlsMediation,
  type TlsOrigin,
  tlsViaConnect,
} from '../testing/tls.js';

function policy(tls: string): string {
  return `
apiVersion: moat/v1
kind: Policy
metadata: { name: bump-test }
objects:
  addresses:
    loopback: 127.0.0.0/8
  urlPatterns:
    private: ["127.0.0.1/private/"]
  urlCategories:
    gambling: { domains: [casino.test] }
    finance: { domains: [bank.test] }
profiles:
  webFiltering:
    default:
      blockCategories: [gambling]
      blockUrlPatterns: [private]
      blockPageMessage: Blocked by the bump test.
  tlsInspection:
    default:
${tls}
utmPolicies:
  web:
    https: { webFiltering: default, tlsInspection: default }
securityRules:
  - { name: loopback-web, fromZones: any, toZones: any, source: loopback, destination: any, service: any, action: permit, utmPolicy: web }
`;
}

const BUMP = `      mode: bump
      bypassCategories: [finance]`;

describe('TLS bumping (explicit proxy, loopback)', () => {
  let pki: TestPki;
  let origin: TlsOrigin;
  let selfSigned: TlsOrigin;
  let harness: ProxyHarness;
  let mediation: TlsMediation;
  let grpcTls: ServiceTls;

  before(async () => {
    try {
      await setUp();
    } catch (err) {
      await tearDown(); // a half-started suite must not leave servers keeping the runner alive
      throw err;
    }
  });
  after(() => tearDown());

  async function setUp() {
    pki = await createTestPki();
    origin = await startTlsOrigin(await pki.issue('origin', ['localhost', '127.0.0.1']));
    selfSigned = await startTlsOrigin(await pki.issue('self', ['localhost'], { selfSigned: true }));
    const grpcPort = await freePort();
    grpcTls = await serviceTls();
    harness = await startProxyHarness({
      policy: policy(BUMP),
      env: {
        MOAT_PROXY_TLS_MEDIATION_ADDRESS: `127.0.0.1:${grpcPort}`,
        MOAT_PROXY_TLS_MEDIATION_TIMEOUT: '2s',
        MOAT_PROXY_HEADERS_TIMEOUT: '2s',
        MOAT_PROXY_UPSTREAM_CA_FILES: pki.caFile,
        ...grpcTls.proxyEnv,
      },
    });
    mediation = await startTlsMediation({
      grpcPort,
      natsUrl: harness.nats.url,
      redisUrl: harness.redis.url,
      grpcTls: grpcTls.mediation,
    });
  }

  async function tearDown() {
    await harness?.stop();
    await mediation?.remove();
    await origin?.close();
    await selfSigned?.close();
    pki?.remove();
    grpcTls?.remove();
  }

  const viaProxy = (url: string, args: string[] = []) => curlViaProxy(harness.proxyPort, url, args);

  test('bump - a client trusting the Moat CA gets the origin through a certificate Moat minted', async () => {
    const reply = await viaProxy(`https://localhost:${origin.port}/echo`, ['--cacert', mediation.caFile]);
    assert.equal(reply.status, 200, reply.stderr);
    const seen = JSON.parse(reply.body) as { host: string; via: string; servername: string };
    assert.equal(seen.host, `localhost:${origin.port}`);
    assert.match(seen.via, /1\.1 moat/, 'the request was decrypted and re-sent by the proxy');
    assert.equal(seen.servername, 'localhost', 'the upstream handshake names the host');
  });

  test('bump - without the Moat CA the client refuses: the traffic really is mediated', async () => {
    const reply = await viaProxy(`https://localhost:${origin.port}/`, ['--cacert', pki.caFile]);
    assert.equal(reply.code, 60, `curl should fail certificate verification: ${reply.stderr}`);
  });

  test('bump - a CONNECT to an address is bumped with a certificate for that address', async () => {
    const reply = await viaProxy(`https://127.0.0.1:${origin.port}/ip`, ['--cacert', mediation.caFile]);
    assert.equal(reply.status, 200, reply.stderr);
    assert.equal(reply.body, 'origin /ip');
  });

  test('bump - URL filtering sees the path inside TLS: a blocked path gets the block page over TLS', async () => {
    const before = origin.paths.length;
    const reply = await viaProxy(`https://127.0.0.1:${origin.port}/private/x?secret=1`, [
      '--cacert',
      mediation.caFile,
    ]);
    assert.equal(reply.status, 403, reply.stderr);
    assert.match(reply.body, /Blocked by the bump test/);
    assert.match(reply.body, /private/);
    assert.match(reply.body, /[0-9a-f]{32}/, 'the page names the trace id');
    assert.equal(origin.paths.length, before, 'nothing reached the origin');
    const allowed = await viaProxy(`https://127.0.0.1:${origin.port}/public`, ['--cacert', mediation.caFile]);
    assert.equal(allowed.status, 200);
  });

  test('bump - a blocked category gets the block page without the upstream being contacted', async () => {
    // casino.test does not even resolve here: the page needs no upstream
    const reply = await viaProxy('https://casino.test/', ['--cacert', mediation.caFile]);
    assert.equal(reply.status, 403, reply.stderr);
    assert.match(reply.body, /gambling/);
  });

  test('bump - an invalid upstream certificate is never hidden: the page names the reason', async () => {
    const before = selfSigned.paths.length;
    const reply = await viaProxy(`https://localhost:${selfSigned.port}/`, ['--cacert', mediation.caFile]);
    assert.equal(reply.status, 502, reply.stderr);
    assert.match(reply.body, /self-signed/);
    assert.equal(selfSigned.paths.length, before);
    const event = await eventually(() =>
      harness.events.find(
        (e) => e.tag === 'SSL_PROXY_UPSTREAM_REFUSED' && String(e.reason).includes('self-signed'),
      ),
    );
    assert.equal(event.engine, 'tls');
    assert.equal((event.details as { tls: { problem: string } }).tls.problem, 'self-signed');
  });

  test('bump - the client side offers TLS 1.2+ with AEAD suites only', async () => {
    const handshake = (args: string[]) =>
      runCommand('openssl', [
        's_client',
        '-proxy',
        `127.0.0.1:${harness.proxyPort}`,
        '-connect',
        `localhost:${origin.port}`,
        '-servername',
        'localhost',
        '-CAfile',
        mediation.caFile,
        '-verify_return_error',
        ...args,
      ]).then((r) => ({
        ok: /Verify return code: 0/.test(r.stdout) && r.code === 0,
        out: r.stdout + r.stderr,
      }));
    const tls13 = await handshake(['-tls1_3']);
    assert.ok(tls13.ok, tls13.out);
    const tls12 = await handshake(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256']);
    assert.ok(tls12.ok, tls12.out);
    const cbc = await handshake(['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384']);
    assert.ok(!cbc.ok, 'a CBC-only client is refused');
    const tls11 = await handshake(['-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0']);
    assert.ok(!tls11.ok, 'a TLS 1.1 client is refused');
  });

  test('bump - an absolute-form request must agree with its Host header; the upstream gets the checked Host', async () => {
    const authority = `localhost:${origin.port}`;
    const open = () =>
      tlsViaConnect(harness.proxyPort, authority, { servername: 'localhost', ca: mediation.caFile });
    const forged = await exchangeRaw(
      await open(),
      `GET https://${authority}/echo HTTP/1.1\r\nHost: blocked.example\r\nConnection: close\r\n\r\n`,
    );
    assert.match(forged, /^HTTP\/1\.1 400/, forged.slice(0, 200));
    const agreed = await exchangeRaw(
      await open(),
      `GET https://${authority}/echo HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`,
    );
    assert.match(agreed, /^HTTP\/1\.1 200/, agreed.slice(0, 200));
    assert.match(agreed, new RegExp(`"host":"${authority}"`));
  });

  test('bump - a client that completes the handshake and sends nothing is cut off at the header deadline', async () => {
    const silent = await tlsViaConnect(harness.proxyPort, `localhost:${origin.port}`, {
      servername: 'localhost',
      ca: mediation.caFile,
    });
    const started = Date.now();
    await new Promise<void>((resolve) => {
      silent.on('error', () => undefined);
      silent.once('close', () => resolve());
    });
    const waited = Date.now() - started;
    assert.ok(waited >= 1500 && waited < 6000, `closed after ${waited} ms (deadline 2 s)`);
  });

  test('bump - an upstream that resets its validated connection cannot crash the proxy', async () => {
    const creds = await pki.issue('reset', ['localhost']);
    // TLS over a plain TCP server, so the raw socket can be reset (RST) once the handshake is done
    const resetting = createNetServer((raw) => {
      raw.on('error', () => undefined);
      const secure = new TLSSocket(raw, { isServer: true, secureContext: createSecureContext(creds) });
      secure.on('error', () => undefined);
      secure.once('secure', () => setTimeout(() => raw.resetAndDestroy(), 50));
    });
    await new Promise<void>((resolve) => resetting.listen(0, '127.0.0.1', resolve));
    const port = (resetting.address() as AddressInfo).port;
    try {
      const secure = await tlsViaConnect(harness.proxyPort, `localhost:${port}`, {
        servername: 'localhost',
        ca: mediation.caFile,
      });
      await new Promise((resolve) => setTimeout(resolve, 300)); // the reset arrives before the request
      const reply = await exchangeRaw(
        secure,
        'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      );
      assert.match(reply, /^HTTP\/1\.1 50[24]/, reply.slice(0, 200));
      const health = await fetch(`http://127.0.0.1:${harness.httpPort}/healthz`);
      assert.equal(health.status, 200, 'the proxy is still up');
    } finally {
      resetting.close();
    }
  });

  test('bump - a later upstream connection is validated too: a changed, invalid certificate gets the refusal page', async () => {
    const valid = createSecureContext(await pki.issue('turncoat', ['localhost']));
    const selfSignedContext = createSecureContext(
      await pki.issue('turncoat-self', ['localhost'], { selfSigned: true }),
    );
    let connections = 0;
    // the first (validated) connection is closed before the client's request; the next one shows a self-signed certificate
    const turncoat = createNetServer((raw) => {
      raw.on('error', () => undefined);
      const first = connections++ === 0;
      const secure = new TLSSocket(raw, { isServer: true, secureContext: first ? valid : selfSignedContext });
      secure.on('error', () => undefined);
      if (first) secure.once('secure', () => setTimeout(() => secure.end(), 50));
    });
    await new Promise<void>((resolve) => turncoat.listen(0, '127.0.0.1', resolve));
    const port = (turncoat.address() as AddressInfo).port;
    try {
      const secure = await tlsViaConnect(harness.proxyPort, `localhost:${port}`, {
        servername: 'localhost',
        ca: mediation.caFile,
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      const reply = await exchangeRaw(
        secure,
        'GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n',
      );
      assert.match(reply, /^HTTP\/1\.1 502/, reply.slice(0, 200));
      assert.match(reply, /Insecure server refused/);
      assert.match(reply, /self-signed/);
      assert.equal(connections, 2);
    } finally {
      turncoat.close();
    }
  });

  test('splice - a CONNECT to an address is still decided by its SNI: another site is refused, not spliced', async () => {
    await harness.applyPolicy(policy(`      mode: splice\n      blockCategories: [gambling]`));
    try {
      const seen = harness.events.length;
      await assert.rejects(
        tlsViaConnect(harness.proxyPort, `127.0.0.1:${origin.port}`, {
          servername: 'casino.test',
          ca: pki.caFile,
        }),
      );
      const event = await eventually(() =>
        harness.events.slice(seen).find((e) => String(e.url).startsWith('127.0.0.1:')),
      );
      assert.equal(event.action, 'blocked', `not spliced: ${JSON.stringify(event)}`);
      assert.match(String(event.tag), /SSL_PROXY_SNI_BLOCKED|WEBFILTER_HOST_FORGERY/);
      // with the SNI of the address's own site, the same kind of tunnel is spliced
      const spliced = await viaProxy(`https://127.0.0.1:${origin.port}/ok`, ['--cacert', pki.caFile]);
      assert.equal(spliced.status, 200, spliced.stderr);
    } finally {
      await harness.applyPolicy(policy(BUMP));
    }
  });

  test('splice - a bypassed category or host passes through: the client sees the origin certificate', async () => {
    await harness.applyPolicy(policy(`${BUMP}\n      bypassHosts: [127.0.0.1]`));
    const seen = harness.events.length;
    const reply = await viaProxy(`https://127.0.0.1:${origin.port}/spliced`, ['--cacert', pki.caFile]);
    assert.equal(reply.status, 200, `the origin's own certificate verifies against its CA: ${reply.stderr}`);
    const event = await eventually(() =>
      harness.events.slice(seen).find((e) => e.tag === 'SSL_PROXY_SPLICE'),
    );
    assert.match(String(event.reason), /bypass list/);
    await harness.applyPolicy(policy(BUMP));
  });

  test('mutual TLS - tls-mediation mints only for clients with a certificate from the service CA', async () => {
    const ask = (creds: ChannelCredentials) =>
      new Promise<{ code?: number; serial?: string }>((resolve) => {
        const client = new pb.TlsMediationServiceClient(`127.0.0.1:${mediation.grpcPort}`, creds);
        client.issueCertificate(
          { sni: 'stolen.example', dnsNames: [], ipAddresses: [] },
          new Metadata(),
          { deadline: Date.now() + 3000 },
          (err, response) => {
            client.close();
            resolve(err ? { code: err.code } : { serial: response?.serial });
          },
        );
      });
    const ca = readFileSync(grpcTls.proxy.caFile);
    const plaintext = await ask(credentials.createInsecure());
    assert.equal(plaintext.code, status.UNAVAILABLE, 'a plaintext client gets nothing');
    const anonymous = await ask(credentials.createSsl(ca));
    assert.equal(anonymous.code, status.UNAVAILABLE, 'a TLS client without a certificate gets nothing');
    const stranger = await ask(
      credentials.createSsl(
        ca,
        readFileSync(grpcTls.stranger.keyFile),
        readFileSync(grpcTls.stranger.certFile),
      ),
    );
    assert.equal(stranger.code, status.UNAVAILABLE, 'a certificate from another CA gets nothing');
    const proxy = await ask(
      credentials.createSsl(ca, readFileSync(grpcTls.proxy.keyFile), readFileSync(grpcTls.proxy.certFile)),
    );
    assert.ok(proxy.serial, `the proxy's certificate is accepted (${JSON.stringify(proxy)})`);
  });

  test('fail closed - without tls-mediation a bumped connection is refused, never spliced', async () => {
    // an origin whose certificate names differ: the proxy has no leaf for them cached
    const other = await startTlsOrigin(await pki.issue('other', ['localhost', 'other.localhost']));
    try {
      await mediation.stop();
      try {
        const reply = await viaProxy(`https://localhost:${other.port}/`, ['--cacert', mediation.caFile]);
        assert.notEqual(reply.status, 200, 'nothing may pass unmediated');
        assert.equal(other.paths.length, 0);
        const event = await eventually(() =>
          harness.events.find((e) => e.tag === 'SSL_PROXY_MEDIATION_UNAVAILABLE'),
        );
        assert.match(String(event.reason), /tls-mediation/);
        const metrics = await (await fetch(`http://127.0.0.1:${harness.httpPort}/metrics`)).text();
        assert.match(metrics, /moat_proxy_tls_mediation_errors_total\S* [1-9]/);
      } finally {
        await mediation.restart();
      }
      // the gRPC channel finds the restarted service within its reconnect backoff (at most 2 s) and a
      // TLS handshake: a loaded machine may need a second try, never a proxy restart
      let back = await viaProxy(`https://localhost:${other.port}/again`, ['--cacert', mediation.caFile]);
      for (let attempt = 1; back.status !== 200 && attempt < 10; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 500));
        back = await viaProxy(`https://localhost:${other.port}/again`, ['--cacert', mediation.caFile]);
      }
      assert.equal(back.status, 200, `bumping resumes once tls-mediation is back: ${back.stderr}`);
    } finally {
      await other.close();
    }
  });
});

async function eventually<T>(find: () => T | undefined, timeoutMs = 3000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error('no matching event in time');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
