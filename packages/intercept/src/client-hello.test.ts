import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import {
  type ClientHelloParse,
  MAX_CLIENT_HELLO_LENGTH,
  MAX_RECORDS,
  parseClientHello,
} from './client-hello.js';
import { curlClientHello, nodeClientHello } from './testing/capture.js';
import { clientHelloMessage, frame, serverNameExtension, unframe } from './testing/client-hello-builder.js';

function complete(result: ClientHelloParse) {
  assert.equal(result.status, 'complete', JSON.stringify(result));
  if (result.status !== 'complete') throw new Error('unreachable');
  return result;
}

function rejected(result: ClientHelloParse, status: 'malformed' | 'not-tls', reason?: RegExp) {
  assert.equal(result.status, status, JSON.stringify(result));
  if (reason && 'reason' in result) assert.match(result.reason, reason);
}

describe('client-hello from real clients', () => {
  const captured: Record<string, Buffer> = {};
  before(async () => {
    captured.node = await nodeClientHello({
      servername: 'www.Casino.test',
      ALPNProtocols: ['h2', 'http/1.1'],
    });
    captured.nodeIp = await nodeClientHello({});
    captured.curl = await curlClientHello('https://allowed.test:PORT/');
    captured.curlHttp1 = await curlClientHello('https://bank.test:PORT/', [
      '--http1.1',
      '--tlsv1.2',
      '--tls-max',
      '1.2',
    ]);
    captured.curlIp4 = await curlClientHello('https://127.0.0.1:PORT/');
    captured.curlIp6 = await curlClientHello('https://[::1]:PORT/', [], '::1');
  });

  test('client-hello - parses SNI, ALPN and TLS 1.3 from a Node tls.connect ClientHello', () => {
    const hello = complete(parseClientHello(captured.node ?? Buffer.alloc(0)));
    assert.equal(hello.sni, 'www.casino.test', 'SNI is lower-cased');
    assert.deepEqual(hello.alpn, ['h2', 'http/1.1']);
    assert.equal(hello.tlsVersion, 'TLSv1.3');
    assert.equal(hello.legacyVersion, 0x0303);
    assert.ok(hello.supportedVersions?.includes(0x0304));
    assert.ok(hello.cipherSuites.includes(0x1301), 'TLS_AES_128_GCM_SHA256 offered');
    assert.equal(hello.recordBytes, captured.node?.length);
    assert.equal(hello.encryptedClientHello, false);
  });

  test("client-hello - parses curl's ClientHello (SNI, h2 + http/1.1)", () => {
    const hello = complete(parseClientHello(captured.curl ?? Buffer.alloc(0)));
    assert.equal(hello.sni, 'allowed.test');
    assert.deepEqual(hello.alpn, ['h2', 'http/1.1']);
    assert.equal(hello.tlsVersion, 'TLSv1.3');
  });

  test('client-hello - curl limited to TLS 1.2 and HTTP/1.1 offers just that', () => {
    const hello = complete(parseClientHello(captured.curlHttp1 ?? Buffer.alloc(0)));
    assert.equal(hello.sni, 'bank.test');
    assert.deepEqual(hello.alpn, ['http/1.1']);
    assert.equal(hello.tlsVersion, 'TLSv1.2');
  });

  test('client-hello - IP-literal connections carry no SNI (Node, curl IPv4, curl IPv6)', () => {
    for (const name of ['nodeIp', 'curlIp4', 'curlIp6']) {
      const hello = complete(parseClientHello(captured[name] ?? Buffer.alloc(0)));
      assert.equal(hello.sni, undefined, name);
      assert.equal(hello.extensionTypes.includes(0), false, `${name}: no server_name extension`);
    }
  });

  test('client-hello - every proper prefix is incomplete and the whole is complete', () => {
    for (const name of ['node', 'curl']) {
      const bytes = captured[name] ?? Buffer.alloc(0);
      for (let cut = 0; cut < bytes.length; cut++) {
        const result = parseClientHello(bytes.subarray(0, cut));
        assert.equal(result.status, 'incomplete', `${name} cut at ${cut}: ${JSON.stringify(result)}`);
        // The hint may only promise what is true: more bytes, and never past the end of the hello.
        if (result.status === 'incomplete') assert.ok(result.needed > cut && result.needed <= bytes.length);
      }
      assert.equal(complete(parseClientHello(bytes)).recordBytes, bytes.length);
    }
  });

  test('client-hello - the same hello re-framed into many small records parses the same', () => {
    const bytes = captured.node ?? Buffer.alloc(0);
    const reference = complete(parseClientHello(bytes));
    const message = unframe(bytes);
    // Node's hello is ~1.6 KiB: 2-byte records are the finest split under MAX_RECORDS (1-byte: curl's below).
    for (const size of [2, 3, 4, 5, 37, 512, 1000]) {
      const reframed = frame(message, size);
      const hello = complete(parseClientHello(reframed));
      assert.deepEqual({ ...hello, recordBytes: 0 }, { ...reference, recordBytes: 0 }, `records of ${size}`);
      assert.equal(hello.recordBytes, reframed.length);
      // Split over records AND over reads: every prefix still just waits for more.
      if (size === 37)
        for (let cut = 0; cut < reframed.length; cut++)
          assert.equal(parseClientHello(reframed.subarray(0, cut)).status, 'incomplete', `cut ${cut}`);
    }
  });

  test("client-hello - curl's hello in one-byte records parses the same", () => {
    const bytes = captured.curl ?? Buffer.alloc(0);
    const reframed = frame(unframe(bytes), 1);
    const hello = complete(parseClientHello(reframed));
    assert.deepEqual({ ...hello, recordBytes: 0 }, { ...complete(parseClientHello(bytes)), recordBytes: 0 });
  });

  test('client-hello - bytes after the hello (pipelined data) are left out of recordBytes', () => {
    const bytes = captured.curl ?? Buffer.alloc(0);
    const hello = complete(parseClientHello(Buffer.concat([bytes, Buffer.from([23, 3, 3, 0, 1, 0])])));
    assert.equal(hello.recordBytes, bytes.length);
  });
});

describe('client-hello from hand-built inputs', () => {
  test('client-hello - a 40 KiB hello over three 16 KiB records parses', () => {
    const message = clientHelloMessage({ sni: 'big.test', alpn: ['http/1.1'], padding: 40_000 });
    const records = frame(message);
    assert.equal(records.length, message.length + 15, 'three records');
    const hello = complete(parseClientHello(records));
    assert.equal(hello.sni, 'big.test');
    assert.deepEqual(hello.alpn, ['http/1.1']);
    assert.equal(hello.tlsVersion, 'TLSv1.2', 'no supported_versions: the legacy version');
  });

  test('client-hello - more than 64 KiB is malformed, as soon as the header says so', () => {
    const message = clientHelloMessage({ sni: 'huge.test', padding: MAX_CLIENT_HELLO_LENGTH });
    rejected(parseClientHello(frame(message)), 'malformed', /exceeds/);
    rejected(parseClientHello(frame(message).subarray(0, 9)), 'malformed', /exceeds/);
  });

  test('client-hello - a hello spread over more than MAX_RECORDS records is malformed', () => {
    const message = clientHelloMessage({ sni: 'many.test', padding: MAX_RECORDS });
    rejected(parseClientHello(frame(message, 1)), 'malformed', /more than 1024 records/);
    assert.equal(complete(parseClientHello(frame(message, 2))).sni, 'many.test');
  });

  test('client-hello - GREASE is ignored in supported_versions; ECH is reported', () => {
    const hello = complete(
      parseClientHello(
        frame(
          clientHelloMessage({
            versions: [0x3a3a, 0x0304, 0x0303],
            extraExtensions: [[0xfe0d, Buffer.alloc(8, 1)]],
          }),
        ),
      ),
    );
    assert.deepEqual(hello.supportedVersions, [0x0304, 0x0303]);
    assert.equal(hello.tlsVersion, 'TLSv1.3');
    assert.equal(hello.encryptedClientHello, true);
  });

  test('client-hello - a hello without an extensions block is complete, without SNI', () => {
    const hello = complete(parseClientHello(frame(clientHelloMessage({ withExtensions: false }))));
    assert.equal(hello.sni, undefined);
    assert.deepEqual(hello.extensionTypes, []);
  });

  test('client-hello - a trailing dot is dropped; non-host_name entries are skipped', () => {
    const sni = complete(parseClientHello(frame(clientHelloMessage({ sni: 'Origin.Test.' }))));
    assert.equal(sni.sni, 'origin.test');
    const other = serverNameExtension([7, 'ignored'], [0, 'real.test']);
    const hello = complete(parseClientHello(frame(clientHelloMessage({ extraExtensions: [[0, other]] }))));
    assert.equal(hello.sni, 'real.test');
  });

  test('client-hello - plain HTTP, SSLv2 and foreign protocols are not-tls; empty input is incomplete', () => {
    rejected(parseClientHello(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 'not-tls');
    rejected(parseClientHello(Buffer.from('CONNECT example.test:443 HTTP/1.1\r\n')), 'not-tls');
    rejected(parseClientHello(Buffer.from([0x80, 0x2e, 0x01, 0x00, 0x02])), 'not-tls');
    rejected(parseClientHello(Buffer.from([0x16, 0x02])), 'not-tls', /major/);
    rejected(parseClientHello(Buffer.from([0x16, 0x03, 0x09])), 'not-tls', /unknown/);
    assert.equal(parseClientHello(Buffer.alloc(0)).status, 'incomplete');
    assert.equal(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x02])).status, 'incomplete');
  });

  test('client-hello - broken records and hellos are malformed', () => {
    const good = clientHelloMessage({ sni: 'ok.test', alpn: ['h2'] });
    const records = frame(good, 100);
    const cases: [string, Buffer, RegExp][] = [
      ['zero-length record', Buffer.from([22, 3, 1, 0, 0]), /empty/],
      ['oversized record', Buffer.from([22, 3, 1, 0x40, 0x01]), /exceeds 16384/],
      [
        'alert record in the middle',
        Buffer.concat([records.subarray(0, 105), Buffer.from([21, 3, 3, 0, 2, 2, 40])]),
        /content type 21/,
      ],
      ['not a ClientHello', frame(Buffer.concat([Buffer.from([2]), good.subarray(1)])), /type 2/],
      [
        'truncated body',
        frame(Buffer.concat([good.subarray(0, 1), Buffer.from([0, 0, 10]), good.subarray(4, 14)])),
        /truncated/,
      ],
      ['trailing bytes', frame(withLength(Buffer.concat([good, Buffer.from([0])]))), /after the extensions/],
      [
        'duplicate extension',
        frame(
          clientHelloMessage({ sni: 'a.test', extraExtensions: [[0, serverNameExtension([0, 'b.test'])]] }),
        ),
        /twice/,
      ],
      [
        'two host_names',
        frame(
          clientHelloMessage({ extraExtensions: [[0, serverNameExtension([0, 'a.test'], [0, 'b.test'])]] }),
        ),
        /more than one/,
      ],
      ['bad host name', frame(clientHelloMessage({ sni: 'evil.test\r\nX-Injected: 1' })), /valid host name/],
      ['empty label', frame(clientHelloMessage({ sni: 'a..test' })), /valid host name/],
      ['IPv6 literal in SNI', frame(clientHelloMessage({ sni: '[::1]' })), /valid host name/],
      [
        'empty ALPN name',
        frame(clientHelloMessage({ extraExtensions: [[16, Buffer.from([0, 1, 0])]] })),
        /empty ALPN/,
      ],
      [
        'odd supported_versions',
        frame(clientHelloMessage({ extraExtensions: [[43, Buffer.from([3, 3, 4, 3])]] })),
        /supported_versions/,
      ],
      ['session_id too long', frame(withSessionIdLength(good, 33)), /session_id/],
    ];
    for (const [name, input, reason] of cases) {
      const result = parseClientHello(input);
      assert.equal(result.status, 'malformed', `${name}: ${JSON.stringify(result)}`);
      if (result.status === 'malformed') assert.match(result.reason, reason, name);
    }
    // Control: the untouched hello parses, through the same framing.
    assert.equal(complete(parseClientHello(records)).sni, 'ok.test');
  });

  test('client-hello - fuzz: 20 000 random and mutated inputs never throw', () => {
    const seeds = [
      frame(clientHelloMessage({ sni: 'fuzz.test', alpn: ['h2', 'http/1.1'], versions: [0x0304, 0x0303] })),
      frame(clientHelloMessage({ sni: 'split.test', padding: 300 }), 64),
      frame(clientHelloMessage({ withExtensions: false })),
    ];
    const random = lcg(0x5eed);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 20_000; i++) {
      const input =
        i % 4 === 0
          ? randomBytes(random, random() % 600)
          : mutate(seeds[i % seeds.length] ?? Buffer.alloc(0), random);
      let result: ClientHelloParse;
      try {
        result = parseClientHello(input);
      } catch (error) {
        assert.fail(`threw on input ${input.toString('hex')}: ${String(error)}`);
      }
      counts[result.status] = (counts[result.status] ?? 0) + 1;
      // 'parser error' would mean an exception escaped a bounds check and was only caught by the safety net.
      if ('reason' in result) assert.doesNotMatch(result.reason, /^parser error/, input.toString('hex'));
      if (result.status === 'complete') {
        if (result.sni !== undefined) assert.match(result.sni, /^[a-z0-9_.-]+$/);
        assert.ok(result.recordBytes <= input.length);
      }
    }
    // The mutations must reach every outcome, or the loop tests less than it claims.
    for (const status of ['complete', 'incomplete', 'not-tls', 'malformed'])
      assert.ok((counts[status] ?? 0) > 0, `no ${status} outcome: ${JSON.stringify(counts)}`);
  });
});

/** Rewrites the 24-bit handshake length after the body was edited. */
function withLength(message: Buffer): Buffer {
  const copy = Buffer.from(message);
  copy.writeUIntBE(copy.length - 4, 1, 3);
  return copy;
}

function withSessionIdLength(message: Buffer, length: number): Buffer {
  const copy = Buffer.from(message);
  copy[4 + 2 + 32] = length;
  return copy;
}

/** A small deterministic PRNG, so a failing fuzz case is reproducible. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state >>> 8;
  };
}

function randomBytes(random: () => number, length: number): Buffer {
  const bytes = Buffer.alloc(length);
  for (let i = 0; i < length; i++) bytes[i] = random() & 0xff;
  // Half of them start like a handshake record, to get past the first check.
  if (length > 3 && random() % 2 === 0) bytes.set([22, 3, random() % 5], 0);
  return bytes;
}

function mutate(seed: Buffer, random: () => number): Buffer {
  const copy = Buffer.from(seed);
  switch (random() % 5) {
    case 0: // flip a few bytes
      for (let n = 1 + (random() % 4); n > 0; n--) copy[random() % copy.length] = random() & 0xff;
      return copy;
    case 1: // truncate
      return copy.subarray(0, random() % copy.length);
    case 2: // insert junk
      return Buffer.concat([
        copy.subarray(0, random() % copy.length),
        randomBytes(random, 1 + (random() % 8)),
        copy,
      ]);
    case 3: // corrupt a length field near the start
      copy[[3, 4, 6, 7, 8][random() % 5] ?? 3] = random() & 0xff;
      return copy;
    default: // untouched
      return copy;
  }
}
