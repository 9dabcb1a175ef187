/**
 * tls-mediation as it runs: real NATS and Redis, the CA generated into a data directory, the proxy's
 * call (IssueCertificate over gRPC) and a client fetching the CA certificate; restarted, it serves
 * the same CA and the same leaves.
 */
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { credentials } from '@grpc/grpc-js';
import { tlsV1 as pb } from '@moat/proto';
import {
  freePort,
  type ManagedProcess,
  type NatsServer,
  type RedisServer,
  runCommand,
  startNats,
  startProcess,
  startRedis,
  waitFor,
} from '@moat/testkit';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

describe('tls-mediation service', () => {
  let dir: string;
  let nats: NatsServer;
  let redis: RedisServer;
  let service: ManagedProcess | undefined;
  let ports: { http: number; grpc: number; ca: number };
  let client: InstanceType<typeof pb.TlsMediationServiceClient>;

  const env = () => ({
    ...process.env,
    MOAT_NATS_URL: nats.url,
    MOAT_REDIS_URL: redis.url,
    MOAT_LOG_LEVEL: 'warn',
    MOAT_TLS_MEDIATION_HTTP_PORT: String(ports.http),
    MOAT_TLS_MEDIATION_GRPC_HOST: '127.0.0.1',
    MOAT_TLS_MEDIATION_GRPC_PORT: String(ports.grpc),
    MOAT_TLS_MEDIATION_CA_HOST: '127.0.0.1',
    MOAT_TLS_MEDIATION_CA_PORT: String(ports.ca),
    MOAT_TLS_MEDIATION_DATA_DIR: join(dir, 'data'),
  });
  async function start() {
    service = startProcess('tls-mediation', process.execPath, [MAIN], { env: env() });
    await waitFor(
      'tls-mediation /readyz',
      async () => (await fetch(`http://127.0.0.1:${ports.http}/readyz`)).ok,
      {
        proc: service,
        timeoutMs: 20_000,
      },
    );
  }
  const issue = (request: Partial<pb.IssueCertificateRequest>) =>
    new Promise<pb.IssueCertificateResponse>((resolve, reject) =>
      client.issueCertificate(
        { sni: '', dnsNames: [], ipAddresses: [], ...request },
        (err: Error | null, res: pb.IssueCertificateResponse) => (err ? reject(err) : resolve(res)),
      ),
    );

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'moat-tls-svc-'));
    [nats, redis] = await Promise.all([startNats(), startRedis()]);
    ports = { http: await freePort(), grpc: await freePort(), ca: await freePort() };
    await start();
    client = new pb.TlsMediationServiceClient(`127.0.0.1:${ports.grpc}`, credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await service?.stop();
    await Promise.all([nats?.stop(), redis?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('service - IssueCertificate mints a leaf signed by the CA, then answers repeats from its cache', async () => {
    const first = await issue({ sni: 'shop.example.test', dnsNames: ['example.test'] });
    assert.equal(first.source, 'issued');
    const leaf = new X509Certificate(first.certificatePem);
    assert.ok(leaf.verify(new X509Certificate(first.caCertificatePem).publicKey));
    assert.equal(leaf.subjectAltName, 'DNS:shop.example.test, DNS:example.test');
    assert.match(first.privateKeyPem, /BEGIN PRIVATE KEY/);
    const again = await issue({ sni: 'shop.example.test', dnsNames: ['example.test'] });
    assert.equal(again.source, 'memory');
    assert.equal(again.certificatePem, first.certificatePem);
    assert.match(
      await (await fetch(`http://127.0.0.1:${ports.http}/metrics`)).text(),
      /moat_tls_leaf_certificates_total\{[^}]*source="memory"[^}]*\} 1/,
    );
  });

  test('service - a name that is not a DNS name is INVALID_ARGUMENT, naming it, and the service keeps serving', async () => {
    await assert.rejects(
      issue({ sni: 'no spaces.test' }),
      /INVALID_ARGUMENT.*SNI "no spaces\.test" is not a DNS name/,
    );
    assert.equal((await issue({ sni: 'fine.test' })).source, 'issued');
  });

  test('service - clients fetch the CA certificate as PEM and DER, never the key; a restart keeps the CA and the leaves', async () => {
    const base = `http://127.0.0.1:${ports.ca}`;
    const pem = await (await fetch(`${base}/ca.pem`)).text();
    assert.equal(pem, readFileSync(join(dir, 'data', 'ca.crt'), 'utf8'));
    const der = Buffer.from(await (await fetch(`${base}/ca.der`)).arrayBuffer());
    assert.equal(new X509Certificate(der).fingerprint256, new X509Certificate(pem).fingerprint256);
    assert.match(await (await fetch(`${base}/`)).text(), /update-ca-certificates/);
    for (const path of ['/ca.key', '/../data/ca.key', '/data/ca.key']) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 404, path);
      assert.doesNotMatch(await res.text(), /PRIVATE KEY/);
    }
    const before = await issue({ sni: 'shop.example.test', dnsNames: ['example.test'] });
    await service?.stop();
    await start();
    const after = await issue({ sni: 'shop.example.test', dnsNames: ['example.test'] });
    assert.equal(after.source, 'redis', 'a restarted replica finds the leaf in Redis');
    assert.equal(after.certificatePem, before.certificatePem);
    assert.equal(after.caCertificatePem, pem, 'the same CA');
  });

  test('service - half an imported CA is a configuration error naming the missing variable', async () => {
    const r = await runCommand(process.execPath, [MAIN], {
      env: { ...env(), MOAT_TLS_MEDIATION_CA_CERT_FILE: join(dir, 'data', 'ca.crt') },
      timeoutMs: 20_000,
    });
    assert.equal(r.code, 1);
    assert.match(
      r.stderr,
      /MOAT_TLS_MEDIATION_CA_KEY_FILE: missing: the CA certificate and key files go together/,
    );
  });
});
