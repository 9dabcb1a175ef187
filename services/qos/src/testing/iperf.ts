/** iperf3 between the firewall's test namespaces: servers on the server side, clients on the LAN side. */

import { ADDR, NS } from '@moat/firewall/testing';
import { type ManagedProcess, runCommand, startProcess, waitFor } from '@moat/testkit';

/** One iperf3 server per port in the server namespace, added to `servers` (for the caller to stop). */
export async function startIperfServers(ports: readonly number[], servers: ManagedProcess[]): Promise<void> {
  for (const port of ports) {
    const server = startProcess(`iperf3-${port}`, 'ip', [
      'netns',
      'exec',
      NS.wan,
      'iperf3',
      '-s',
      '-B',
      ADDR.server,
      '-p',
      String(port),
      '--forceflush',
    ]);
    servers.push(server);
    await waitFor(`iperf3 server on ${port}`, async () => /Server listening/.test(server.output()), {
      proc: server,
      timeoutMs: 5000,
    });
  }
}

export interface IperfOptions {
  seconds?: number;
  /** Server sends, client receives (the download direction). */
  reverse?: boolean;
}

/** Runs an iperf3 client from the LAN namespace; resolves with the received rate in bits per second. */
export async function iperf(port: number, options: IperfOptions = {}): Promise<number> {
  const seconds = options.seconds ?? 4;
  const result = await runCommand(
    'ip',
    [
      'netns',
      'exec',
      NS.lan,
      'iperf3',
      '-c',
      ADDR.server,
      '-p',
      String(port),
      '-t',
      String(seconds),
      // the first second is TCP slow start and the shaper's initial burst
      '-O',
      '1',
      '-J',
      ...(options.reverse ? ['-R'] : []),
    ],
    { timeoutMs: (seconds + 15) * 1000 },
  );
  if (result.code !== 0)
    throw new Error(`iperf3 to port ${port} failed: ${result.stderr || result.stdout.slice(0, 400)}`);
  const report = JSON.parse(result.stdout) as { end?: { sum_received?: { bits_per_second?: number } } };
  const bps = report.end?.sum_received?.bits_per_second;
  if (bps === undefined) throw new Error(`iperf3 to port ${port}: no received rate in its report`);
  return bps;
}

/** Why the QoS tests cannot run here (beyond the packet tests' own needs), or undefined. */
export async function iperfSkipReason(): Promise<string | undefined> {
  for (const tool of ['iperf3', 'tc']) {
    const found = await runCommand('sh', ['-c', `command -v ${tool}`]);
    if (found.code !== 0) return `${tool} is not installed (scripts/setup.sh installs it)`;
  }
  return undefined;
}
