import { readFileSync } from 'node:fs';
import type { TlsOptions } from 'node:tls';
import { BAD_TLS_VARIANTS, type BadTlsProtocol, badTlsFiles } from './bad-tls.js';
import { createOriginTlsServer } from './origin.js';

/**
 * Entry point: `node bad-tls-main.js <lab state dir>` — the bad-certificate servers of bad-tls.ts,
 * each on its own address, port 443, inside moat-wan. Stops on SIGTERM/SIGINT.
 */

const PORT = 443;

// Old protocols and CBC suites are below OpenSSL's default security level: level 0 lets them run.
const PROTOCOLS: Record<BadTlsProtocol, TlsOptions> = {
  modern: { minVersion: 'TLSv1.2' },
  'tls1.0-only': { minVersion: 'TLSv1', maxVersion: 'TLSv1', ciphers: 'DEFAULT@SECLEVEL=0' },
  'tls1.1-only': { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' },
  'cbc-only': {
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.2',
    ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256@SECLEVEL=0',
  },
};

const root = process.argv[2];
if (!root) {
  console.error('usage: bad-tls-main.js <lab state directory>');
  process.exit(2);
}

const servers = BAD_TLS_VARIANTS.map((variant) => {
  const files = badTlsFiles(root, variant);
  const server = createOriginTlsServer(
    { cert: readFileSync(files.cert), key: readFileSync(files.key) },
    {
      ...PROTOCOLS[variant.protocol],
      ...(variant.name === 'rsa1024' ? { ciphers: 'DEFAULT@SECLEVEL=0' } : {}),
    },
  );
  server.on('error', (error) => {
    console.error(`bad-tls: cannot listen on ${variant.address}:${PORT} (${variant.name}): ${error.message}`);
    process.exit(1);
  });
  // handshake failures are the point of these servers: nothing to report
  server.on('tlsClientError', () => undefined);
  server.listen(PORT, variant.address, () =>
    console.log(`bad-tls: ${variant.name} (${variant.defect}) on https://${variant.address}:${PORT}`),
  );
  return server;
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    for (const server of servers) {
      server.close();
      server.closeAllConnections();
    }
  });
}
