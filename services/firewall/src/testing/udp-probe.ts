/**
 * Sends UDP datagrams for the firewall's packet tests, run inside a test namespace:
 * `node udp-probe.js <address> <port> <count>`. Each datagram leaves from its own socket (a new flow
 * for conntrack); after a second, prints one JSON line: how many answered and the first answer.
 */
import { createSocket } from 'node:dgram';

const [address = '', port = '0', count = '1'] = process.argv.slice(2);
const answers: string[] = [];
const sockets = Array.from({ length: Number(count) }, () => {
  const socket = createSocket('udp4');
  socket.on('message', (data) => answers.push(data.toString().trim()));
  socket.send('probe', Number(port), address);
  return socket;
});
setTimeout(() => {
  process.stdout.write(`${JSON.stringify({ answered: answers.length, first: answers[0] ?? null })}\n`);
  for (const socket of sockets) socket.close();
}, 1000);
