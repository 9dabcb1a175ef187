/**
 * The certificates for Moat's own service-to-service TLS in a lab or `moat dev` run: a private CA,
 * tls-mediation's gRPC server certificate (for 127.0.0.1, where the proxy dials it) and the proxy's
 * client certificate. With them tls-mediation mints leaves only for the proxy.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPrivateCa } from '@moat/x509/pki';

export interface ServiceTlsFiles {
  caFile: string;
  mediation: { certFile: string; keyFile: string };
  proxy: { certFile: string; keyFile: string };
}

export const serviceTlsFiles = (dir: string): ServiceTlsFiles => ({
  caFile: join(dir, 'ca.crt'),
  mediation: { certFile: join(dir, 'tls-mediation.crt'), keyFile: join(dir, 'tls-mediation.key') },
  proxy: { certFile: join(dir, 'proxy.crt'), keyFile: join(dir, 'proxy.key') },
});

/**
 * Issues the files into `dir` unless they are all there. `proxyUid`: who may read the proxy's key
 * (the lab runs the proxy as nobody); every key is mode 0600.
 */
export async function ensureServiceTls(
  dir: string,
  opts: { proxyUid?: number } = {},
): Promise<ServiceTlsFiles> {
  const files = serviceTlsFiles(dir);
  const all = [
    files.caFile,
    files.mediation.certFile,
    files.mediation.keyFile,
    files.proxy.certFile,
    files.proxy.keyFile,
  ];
  if (!all.every((file) => existsSync(file))) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const ca = await createPrivateCa('Moat service CA');
    const server = await ca.issue({
      commonName: 'tls-mediation',
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1'],
      usage: 'server',
    });
    const client = await ca.issue({ commonName: 'moat-proxy', usage: 'client' });
    writeFileSync(files.caFile, ca.cert, { mode: 0o644 });
    writeFileSync(files.mediation.certFile, server.cert, { mode: 0o644 });
    writeFileSync(files.mediation.keyFile, server.key, { mode: 0o600 });
    writeFileSync(files.proxy.certFile, client.cert, { mode: 0o644 });
    writeFileSync(files.proxy.keyFile, client.key, { mode: 0o600 });
  }
  if (opts.proxyUid !== undefined) chownSync(files.proxy.keyFile, opts.proxyUid, -1);
  return files;
}
