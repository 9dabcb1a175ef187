/**
 * A tiny HTTP (and UDP) server for the firewall's packet tests, run inside a test namespace:
 * `node echo-server.js <address:port> [udp:<address:port>] ...`. Every response names the peer
 * address the server saw, so a test can tell whether source NAT happened.
 */
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';

for (const arg of process.argv.slice(2)) {
  const udp = arg.startsWith('udp:');
  const spec = udp ? arg.slice(4) : arg;
  const colon = spec.lastIndexOf(':');
  const host = spec.slice(0, colon);
  const port = Number(spec.slice(colon + 1));
  const ready = () => process.stdout.write(`listening ${arg}\n`);
  if (udp) {
    const socket = createSocket('udp4');
    socket.on('message', (_data, peer) =>
      socket.send(`peer=${peer.address} local=${spec}\n`, peer.port, peer.address),
    );
    socket.bind(port, host, ready);
  } else {
    createServer((req, res) => {
      res.end(`peer=${req.socket.remoteAddress} local=${host}:${port}\n`);
    }).listen(port, host, ready);
  }
}
