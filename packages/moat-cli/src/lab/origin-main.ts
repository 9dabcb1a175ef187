import { readFileSync } from 'node:fs';
import type { Server } from 'node:net';
import { parseArgs } from 'node:util';
import { createOriginServer, createOriginTlsServer } from './origin.js';

/**
 * Entry point: `node origin-main.js [--cert F --key F --tls <host:port>]... <host:port>...`
 * — one origin server on every plain address, and (with a certificate) one HTTPS server on
 * every --tls address (IPv6 as [addr]:port). Stops on SIGTERM/SIGINT.
 */

function parseListen(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!match?.[1] || !match[2])
    throw new Error(`bad listen address '${value}', expected host:port or [v6]:port`);
  return { host: match[1], port: Number(match[2]) };
}

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    cert: { type: 'string' },
    key: { type: 'string' },
    tls: { type: 'string', multiple: true, default: [] },
  },
});
const tlsAddresses = values.tls ?? [];
if (
  (positionals.length === 0 && tlsAddresses.length === 0) ||
  (tlsAddresses.length > 0 && !(values.cert && values.key))
) {
  console.error('usage: origin-main.js [--cert <file> --key <file> --tls <host:port>]... <host:port>...');
  process.exit(2);
}
const credentials =
  values.cert && values.key ? { cert: readFileSync(values.cert), key: readFileSync(values.key) } : undefined;

const listeners: { server: Server & { closeAllConnections(): void }; address: string; scheme: string }[] = [
  ...positionals.map((address) => ({ server: createOriginServer(), address, scheme: 'http' })),
  ...(credentials
    ? tlsAddresses.map((address) => ({
        server: createOriginTlsServer(credentials),
        address,
        scheme: 'https',
      }))
    : []),
];

for (const { server, address, scheme } of listeners) {
  const { host, port } = parseListen(address);
  server.on('error', (error) => {
    console.error(`origin: cannot listen on ${scheme}://${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => console.log(`origin: listening on ${scheme}://${address}`));
}

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    for (const { server } of listeners) {
      server.close();
      server.closeAllConnections();
    }
  });
}
