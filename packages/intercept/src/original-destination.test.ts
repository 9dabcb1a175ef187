import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { runCommand } from '@moat/testkit';
import { OriginalDestinationError } from './errors.js';
import { originalDestination } from './original-destination.js';

const PROBE = fileURLToPath(new URL('./testing/original-destination-probe.js', import.meta.url));

/** An accepted loopback connection (server side), with a closer for all three ends. */
async function loopbackConnection(): Promise<{ socket: Socket; close: () => void }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [socket] = (await accepted) as [Socket];
  return {
    socket,
    close: () => {
      socket.destroy();
      client.destroy();
      server.close();
    },
  };
}

test('original-destination - a connection that was not redirected gives undefined', async () => {
  const { socket, close } = await loopbackConnection();
  try {
    assert.equal(originalDestination(socket), undefined);
  } finally {
    close();
  }
});

test('original-destination - a destroyed socket is a typed error, not a crash', async () => {
  const { socket, close } = await loopbackConnection();
  close();
  assert.throws(
    () => originalDestination(socket),
    (error) => error instanceof OriginalDestinationError && error.code === 'ENOFD',
  );
});

/**
 * The real thing, in namespaces of our own:
 *
 *   <A> cli0 10.98.0.2 / fd00:98::2 ── gw0 10.98.0.1 / fd00:98::1 <B>
 *
 * A routes everything via B. In B, nftables redirects what arrives on gw0 for tcp/8081 to :7001
 * (an IPv4 listener) and tcp/8082 to :7002 (a dual-stack `::` listener), and what B itself sends
 * to 10.77.0.9:8083 to :7001 (output hook). The client dials addresses B does not own, as a LAN
 * client dials the internet through the gateway.
 */

function nsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid?.() !== 0) return 'not root: needs network namespaces and nftables';
  for (const [tool, flag] of [
    ['ip', '-V'],
    ['nft', '--version'],
  ]) {
    try {
      execFileSync(tool ?? '', [flag ?? ''], { stdio: 'ignore' });
    } catch {
      return `${tool} is not installed`;
    }
  }
  return undefined;
}

const skip = nsSkipReason();
if (skip) console.error(`\n!!!!!!!! SKIPPING original-destination namespace tests: ${skip} !!!!!!!!\n`);

const A = `moat-t-${process.pid}-a`;
const B = `moat-t-${process.pid}-b`;

describe('original-destination in network namespaces', { skip, timeout: 60_000 }, () => {
  let server: ChildProcess | undefined;
  let ipv6Skip: string | undefined;

  const sh = (args: string[], input?: string) =>
    execFileSync(args[0] ?? 'false', args.slice(1), { input, stdio: ['pipe', 'pipe', 'pipe'] });
  const inNs = (ns: string, args: string[], input?: string) =>
    sh(['ip', 'netns', 'exec', ns, ...args], input);

  before(async () => {
    for (const ns of [A, B]) {
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    const ipv6 = existsSync('/proc/sys/net/ipv6');
    // No duplicate address detection: addresses (link-local too) are usable at once.
    if (ipv6)
      for (const ns of [A, B])
        inNs(ns, ['sysctl', '-qw', 'net.ipv6.conf.default.accept_dad=0', 'net.ipv6.conf.all.accept_dad=0']);
    sh(['ip', '-n', A, 'link', 'add', 'cli0', 'type', 'veth', 'peer', 'name', 'gw0', 'netns', B]);
    sh(['ip', '-n', A, 'addr', 'add', '10.98.0.2/24', 'dev', 'cli0']);
    sh(['ip', '-n', B, 'addr', 'add', '10.98.0.1/24', 'dev', 'gw0']);
    sh(['ip', '-n', B, 'addr', 'add', '10.77.0.9/32', 'dev', 'lo']);
    for (const [ns, dev] of [
      [A, 'cli0'],
      [B, 'gw0'],
    ] as const)
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    sh(['ip', '-n', A, 'route', 'add', 'default', 'via', '10.98.0.1']);
    inNs(
      B,
      ['nft', '-f', '-'],
      `table ip moat-t {
        chain pre {
          type nat hook prerouting priority dstnat; policy accept;
          iifname "gw0" tcp dport 8081 redirect to :7001
          iifname "gw0" tcp dport 8082 redirect to :7002
        }
        chain out {
          type nat hook output priority -100; policy accept;
          ip daddr 10.77.0.9 tcp dport 8083 redirect to :7001
        }
      }\n`,
    );

    if (!ipv6) ipv6Skip = 'the kernel has no IPv6 (/proc/sys/net/ipv6 is missing)';
    else {
      sh(['ip', '-n', A, 'addr', 'add', 'fd00:98::2/64', 'dev', 'cli0', 'nodad']);
      sh(['ip', '-n', B, 'addr', 'add', 'fd00:98::1/64', 'dev', 'gw0', 'nodad']);
      sh(['ip', '-n', A, '-6', 'route', 'add', 'default', 'via', 'fd00:98::1']);
      try {
        inNs(
          B,
          ['nft', '-f', '-'],
          `table ip6 moat-t6 {
            chain pre {
              type nat hook prerouting priority dstnat; policy accept;
              iifname "gw0" tcp dport 8082 redirect to :7002
            }
          }\n`,
        );
      } catch (error) {
        ipv6Skip = `this kernel refuses an ip6 nat table (no IPv6 NAT support?): ${String((error as { stderr?: Buffer }).stderr ?? error).trim()}`;
      }
    }

    server = spawn(
      'ip',
      ['netns', 'exec', B, process.execPath, PROBE, 'serve', '0.0.0.0:7001', '[::]:7002'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let output = '';
    server.stdout?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    server.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    const deadline = Date.now() + 10_000;
    while (!output.includes('listening')) {
      if (server.exitCode !== null || Date.now() > deadline)
        throw new Error(`probe server did not start: ${output}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });

  after(() => {
    // Runs even when before() failed half-way: undo whatever exists, ignore what does not.
    server?.kill('SIGKILL');
    for (const ns of [A, B]) {
      try {
        execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
      } catch {
        // was never created
      }
    }
  });

  async function dial(ns: string, host: string, port: number) {
    const result = await runCommand(
      'ip',
      ['netns', 'exec', ns, process.execPath, PROBE, 'connect', host, String(port)],
      {
        timeoutMs: 15_000,
      },
    );
    assert.equal(result.code, 0, `connect ${host}:${port} from ${ns}: ${result.stderr}`);
    return JSON.parse(result.stdout) as {
      destination?: { address: string; port: number; family: number } | null;
      local?: string;
      error?: string;
    };
  }

  test('original-destination - IPv4 redirected in prerouting gives the address and port the client dialled', async () => {
    const seen = await dial(A, '10.99.0.50', 8081);
    assert.deepEqual(seen.destination, { address: '10.99.0.50', port: 8081, family: 4 });
    assert.equal(seen.local, '10.98.0.1', 'the kernel delivered it to the listener, on the gateway address');
  });

  test('original-destination - IPv4 on a dual-stack (::) listener, where the socket is v4-mapped', async () => {
    const seen = await dial(A, '10.99.0.51', 8082);
    assert.deepEqual(seen.destination, { address: '10.99.0.51', port: 8082, family: 4 });
    assert.equal(seen.local, '::ffff:10.98.0.1');
  });

  test('original-destination - IPv4 redirected in the output hook (a local client)', async () => {
    const seen = await dial(B, '10.77.0.9', 8083);
    assert.deepEqual(seen.destination, { address: '10.77.0.9', port: 8083, family: 4 });
  });

  test('original-destination - IPv6 redirected in prerouting', async (t) => {
    if (ipv6Skip) {
      t.diagnostic(`!!! IPv6 original-destination NOT TESTED: ${ipv6Skip}`);
      console.error(`\n!!!!!!!! SKIPPING IPv6 original-destination: ${ipv6Skip} !!!!!!!!\n`);
      return t.skip(ipv6Skip);
    }
    const seen = await dial(A, 'fd00:99::50', 8082);
    assert.deepEqual(seen.destination, { address: 'fd00:99::50', port: 8082, family: 6 });
  });

  test('original-destination - direct connections through a NAT-tracking namespace give undefined', async (t) => {
    assert.deepEqual(await dial(A, '10.98.0.1', 7001), { destination: null, local: '10.98.0.1' });
    assert.deepEqual(await dial(A, '10.98.0.1', 7002), { destination: null, local: '::ffff:10.98.0.1' });
    if (ipv6Skip) return t.diagnostic(`IPv6 direct case not tested: ${ipv6Skip}`);
    assert.deepEqual(await dial(A, 'fd00:98::1', 7002), { destination: null, local: 'fd00:98::1' });
  });
});
