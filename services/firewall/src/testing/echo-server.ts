/**
 * A tiny HTTP server for the firewall's packet tests, run inside a test namespace:
 * `node echo-server.js <address:port> [<address:port> ...]`. Every response names the peer address
 * the server saw, so a test can tell whether source NAT happened.
 */
import { createServer } from 'node:http';

for (const spec of process.argv.slice(2)) {
  const colon = spec.lastIndexOf(':');
  const host = spec.slice(0, colon);
  const port = Number(spec.slice(colon + 1));
  createServer((req, res) => {
    res.end(`peer=${req.socket.remoteAddress} local=${host}:${port}\n`);
  }).listen(port, host, () => process.stdout.write(`listening ${spec}\n`));
}
