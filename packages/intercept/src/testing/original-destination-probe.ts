import { connect, createServer } from 'node:net';
import { originalDestination } from '../original-destination.js';

/**
 * Run inside a test's network namespace (through `ip netns exec`):
 *   serve <host>:<port>...   listen; tell each client, as one JSON line, what originalDestination() said
 *   connect <host> <port>     connect, print that line
 */

const [mode, ...args] = process.argv.slice(2);

if (mode === 'serve') {
  let pending = args.length;
  for (const spec of args) {
    const match = /^\[?(.+?)\]?:(\d+)$/.exec(spec);
    if (!match?.[1] || !match[2]) throw new Error(`bad listen spec ${spec}`);
    const server = createServer((socket) => {
      let reply: unknown;
      try {
        reply = { destination: originalDestination(socket) ?? null, local: socket.localAddress };
      } catch (error) {
        reply = { error: (error as { code?: string }).code ?? String(error) };
      }
      socket.end(`${JSON.stringify(reply)}\n`);
    });
    // ipv6Only false: '::' also takes IPv4 clients, as v4-mapped addresses.
    server.listen({ host: match[1], port: Number(match[2]), ipv6Only: false }, () => {
      if (--pending === 0) console.log('listening');
    });
  }
} else if (mode === 'connect') {
  const socket = connect({ host: args[0], port: Number(args[1]) });
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  socket.on('end', () => process.stdout.write(data));
  socket.on('error', (error) => {
    console.error(error.message);
    process.exitCode = 1;
  });
  setTimeout(() => {
    console.error('timeout');
    process.exit(1);
  }, 5_000).unref();
} else {
  console.error('usage: original-destination-probe.js serve <host:port>... | connect <host> <port>');
  process.exitCode = 2;
}
