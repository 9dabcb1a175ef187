import assert from 'node:assert/strict';
import { once } from 'node:events';
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import * as tls from 'node:tls';
import { ClientHelloError } from './errors.js';
import { type ClientHelloRead, type ReadClientHelloOptions, readClientHello } from './read-client-hello.js';
import { selfSignedCertificate } from './testing/certificate.js';
import { clientHelloMessage, frame, serverNameExtension } from './testing/client-hello-builder.js';

/** A server whose first connection goes through readClientHello; yields the outcome and the socket. */
async function helloServer(options: ReadClientHelloOptions = {}) {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const outcome = once(server, 'connection').then(async (args) => {
    const socket = args[0] as Socket;
    socket.on('error', () => {});
    try {
      return { socket, read: await readClientHello(socket, options) };
    } catch (error) {
      return { socket, error: error as ClientHelloError };
    }
  });
  return { server, port: (server.address() as AddressInfo).port, outcome };
}

async function rawClient(port: number): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', noDelay: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  return socket;
}

/** Writes `data` in pieces, waiting between them so the server sees separate reads. */
async function writeInPieces(socket: Socket, data: Buffer, sizes: number[], gapMs = 15): Promise<void> {
  let offset = 0;
  for (let i = 0; offset < data.length; i++) {
    const size = sizes[i % sizes.length] ?? 1;
    socket.write(data.subarray(offset, offset + size));
    offset += size;
    await sleep(gapMs);
  }
}

describe('read-client-hello', { timeout: 20_000 }, () => {
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  const track = <T extends { server: Server }>(s: T) => {
    servers.push(s.server);
    return s;
  };
  after(() => {
    for (const socket of sockets) socket.destroy();
    for (const server of servers) server.close();
  });

  test('read-client-hello - assembles a hello split over records and many TCP reads, then pauses', async () => {
    const { port, outcome } = track(await helloServer());
    const client = await rawClient(port);
    sockets.push(client);
    const hello = frame(clientHelloMessage({ sni: 'split.test', alpn: ['h2'], padding: 200 }), 50);
    await writeInPieces(client, hello, [1, 2, 3, 7, 40]);
    const result = await outcome;
    sockets.push(result.socket);
    const read = result.read as ClientHelloRead;
    assert.equal(read.hello.sni, 'split.test');
    assert.deepEqual(read.bytes, hello);
    assert.equal(result.socket.isPaused(), true);
    assert.equal(result.socket.listenerCount('data'), 0);

    // Data sent after the hello waits in the paused socket until the caller takes it.
    client.end('after the hello');
    await sleep(50);
    result.socket.setEncoding('latin1');
    let rest = '';
    result.socket.on('data', (chunk: string) => {
      rest += chunk;
    });
    result.socket.resume();
    await once(result.socket, 'end');
    assert.equal(rest, 'after the hello');
  });

  test('read-client-hello - replaying `bytes` upstream completes a real TLS handshake (nothing lost)', async () => {
    const { key, cert } = selfSignedCertificate(['splice.test']);
    const origin = tls.createServer({ key, cert, ALPNProtocols: ['http/1.1'] }, (s) =>
      s.end('hello from origin'),
    );
    origin.listen(0, '127.0.0.1');
    await once(origin, 'listening');
    servers.push(origin);
    const seen: string[] = [];
    // The transparent proxy in miniature: read the hello, look at it, splice the bytes to the origin.
    const splicer = createServer(async (client) => {
      client.on('error', () => {});
      const { hello, bytes } = await readClientHello(client);
      seen.push(`${hello.sni} ${hello.alpn?.join(',')}`);
      const upstream = connect((origin.address() as AddressInfo).port, '127.0.0.1');
      upstream.on('error', () => client.destroy());
      upstream.write(bytes);
      client.pipe(upstream).pipe(client);
    });
    splicer.listen(0, '127.0.0.1');
    await once(splicer, 'listening');
    servers.push(splicer);

    const socket = tls.connect({
      port: (splicer.address() as AddressInfo).port,
      host: '127.0.0.1',
      servername: 'splice.test',
      ALPNProtocols: ['http/1.1'],
      ca: cert,
    });
    sockets.push(socket);
    socket.setEncoding('utf8');
    let body = '';
    socket.on('data', (chunk: string) => {
      body += chunk;
    });
    await once(socket, 'end');
    assert.equal(socket.authorized, true);
    assert.equal(socket.alpnProtocol, 'http/1.1');
    assert.equal(body, 'hello from origin');
    assert.deepEqual(seen, ['splice.test http/1.1']);
  });

  const failures: [string, ReadClientHelloOptions, (client: Socket) => Promise<void>, string, number][] = [
    [
      'plain HTTP is not-tls, with the bytes read so far',
      {},
      async (c) => {
        c.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      },
      'not-tls',
      27,
    ],
    [
      'a stalled client times out',
      { timeoutMs: 200 },
      async (c) => {
        c.write(frame(clientHelloMessage({ sni: 'slow.test' })).subarray(0, 10));
      },
      'timeout',
      10,
    ],
    [
      'a client that ends mid-hello is closed',
      {},
      async (c) => {
        c.end(frame(clientHelloMessage({ sni: 'gone.test' })).subarray(0, 12));
      },
      'closed',
      12,
    ],
    [
      'more than maxBytes without a complete hello is too-large',
      { maxBytes: 1000 },
      async (c) => {
        await writeInPieces(c, frame(clientHelloMessage({ padding: 3000 })), [400], 30);
      },
      'too-large',
      1200,
    ],
    [
      'a broken hello is malformed',
      {},
      async (c) => {
        c.write(
          frame(
            clientHelloMessage({ sni: 'a.test', extraExtensions: [[0, serverNameExtension([0, 'b.test'])]] }),
          ),
        );
      },
      'malformed',
      -1,
    ],
  ];
  for (const [behaviour, options, send, reason, length] of failures) {
    test(`read-client-hello - ${behaviour}`, async () => {
      const { port, outcome } = track(await helloServer(options));
      const client = await rawClient(port);
      sockets.push(client);
      await send(client);
      const result = await outcome;
      sockets.push(result.socket);
      assert.ok(
        result.error instanceof ClientHelloError,
        `expected an error, got ${JSON.stringify(result.read?.hello)}`,
      );
      assert.equal(result.error.reason, reason, result.error.message);
      if (length >= 0) assert.equal(result.error.bytes.length, length);
      assert.equal(result.socket.listenerCount('data'), 0, 'listeners removed');
    });
  }
});
