/** Shared pieces of the firewall's packet tests: what they need, the echo servers, curl. */
import { fileURLToPath } from 'node:url';
import { type ManagedProcess, runCommand, startProcess, waitFor } from '@moat/testkit';
import { ADDR, NS } from './topology.js';

const ECHO_SERVER = fileURLToPath(new URL('./echo-server.js', import.meta.url));
const UDP_PROBE = fileURLToPath(new URL('./udp-probe.js', import.meta.url));

/** Why the packet tests cannot run here, or undefined when they can. */
export async function packetTestSkipReason(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'not root: needs network namespaces and nftables';
  for (const tool of ['nft', 'curl', 'ip', 'ping']) {
    const found = await runCommand('sh', ['-c', `command -v ${tool}`]);
    if (found.code !== 0) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  return undefined;
}

/** curl from a namespace: the response body, or `curl:<exit code>` when no response came. */
export async function curlFrom(ns: string, url: string): Promise<string> {
  const r = await runCommand('ip', ['netns', 'exec', ns, 'curl', '-sS', '-m', '2', url], {
    timeoutMs: 10_000,
  });
  return r.code === 0 ? r.stdout.trim() : `curl:${r.code}`;
}

/**
 * Echo servers on the server side (tcp/8080 and 9090 on the server address, 8080 on the listed and
 * unlisted addresses) and behind the gateway (tcp/8000 on the client, the port forward's target).
 */
export async function startEchoServers(): Promise<ManagedProcess[]> {
  const servers: ManagedProcess[] = [];
  for (const [ns, listen] of [
    [
      NS.wan,
      [
        `${ADDR.server}:8080`,
        `${ADDR.server}:9090`,
        `${ADDR.listed}:8080`,
        `${ADDR.unlisted}:8080`,
        `udp:${ADDR.server}:5300`,
        `udp:${ADDR.server}:5301`,
        `udp:${ADDR.unlisted}:5300`,
      ],
    ],
    [NS.lan, [`${ADDR.client}:8000`]],
  ] as const) {
    const server = startProcess(`echo-${ns}`, 'ip', [
      'netns',
      'exec',
      ns,
      process.execPath,
      ECHO_SERVER,
      ...listen,
    ]);
    servers.push(server);
    await waitFor(
      `echo server in ${ns}`,
      async () => server.output().split('listening').length > listen.length,
      {
        proc: server,
      },
    );
  }
  return servers;
}

/** `count` UDP datagrams from a namespace, each its own flow: how many were answered, and the first answer. */
export async function udpFrom(
  ns: string,
  address: string,
  port: number,
  count = 1,
): Promise<{ answered: number; first: string | null }> {
  const r = await runCommand(
    'ip',
    ['netns', 'exec', ns, process.execPath, UDP_PROBE, address, String(port), String(count)],
    {
      timeoutMs: 10_000,
    },
  );
  if (r.code !== 0) throw new Error(`udp probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { answered: number; first: string | null };
}

/** One ping from a namespace: true when it was answered within a second. */
export async function pingFrom(ns: string, address: string): Promise<boolean> {
  const r = await runCommand('ip', ['netns', 'exec', ns, 'ping', '-c', '1', '-W', '1', address], {
    timeoutMs: 10_000,
  });
  return r.code === 0;
}
