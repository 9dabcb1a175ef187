import { createOriginServer } from './origin.js';

/**
 * Entry point: `node origin-main.js <host:port>...` — one origin server
 * listening on every given address (IPv6 as [addr]:port). Stops on SIGTERM/SIGINT.
 */

function parseListen(value: string): { host: string; port: number } {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(value);
  if (!match?.[1] || !match[2])
    throw new Error(`bad listen address '${value}', expected host:port or [v6]:port`);
  return { host: match[1], port: Number(match[2]) };
}

const addresses = process.argv.slice(2).map(parseListen);
if (addresses.length === 0) {
  console.error('usage: origin-main.js <host:port>...');
  process.exit(2);
}

const servers = addresses.map(({ host, port }) => {
  const server = createOriginServer();
  server.on('error', (error) => {
    console.error(`origin: cannot listen on ${host}:${port}: ${error.message}`);
    process.exit(1);
  });
  server.listen(port, host, () => console.log(`origin: listening on ${host}:${port}`));
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
