import { spawn } from 'node:child_process';
import { CommandError } from '../errors.js';
import { execInNamespaceArgv } from './netns.js';
import { GW_INTERFACES, LAB_NAMESPACES } from './topology.js';

/**
 * A test fixture standing in for the firewall service's transparent-proxy rules:
 * in moat-gw, web traffic arriving from the LAN (lan0, tcp/80 and tcp/443, IPv4 and
 * IPv6) is `redirect`ed to the proxy's local ports. It lives in a table of its own,
 * so it never touches the firewall's `moat*` tables, and removal deletes only it.
 */

export const LAB_INTERCEPT_TABLE = 'moat-lab-intercept';

export interface InterceptionPorts {
  /** Where intercepted plain HTTP (tcp/80) goes: the proxy's transparent HTTP port in moat-gw. */
  httpPort: number;
  /** Where intercepted TLS (tcp/443) goes. */
  tlsPort: number;
}

/** The ruleset, as one nft transaction: create-if-missing, delete, recreate — idempotent and atomic. */
export function renderInterception({ httpPort, tlsPort }: InterceptionPorts): string {
  for (const [name, port] of Object.entries({ httpPort, tlsPort })) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535)
      throw new RangeError(`${name} must be 1-65535, got ${port}`);
  }
  const lan = GW_INTERFACES.lan;
  return `table inet ${LAB_INTERCEPT_TABLE}
delete table inet ${LAB_INTERCEPT_TABLE}
table inet ${LAB_INTERCEPT_TABLE} {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "${lan}" tcp dport 80 redirect to :${httpPort}
    iifname "${lan}" tcp dport 443 redirect to :${tlsPort}
  }
}
`;
}

/** Installs (or replaces) the redirect rules in moat-gw. The lab must be up. */
export async function interceptWebTraffic(ports: InterceptionPorts): Promise<void> {
  await nftInGateway(renderInterception(ports));
}

/** Deletes the fixture's table; a no-op when it is not there. */
export async function removeInterception(): Promise<void> {
  await nftInGateway(`table inet ${LAB_INTERCEPT_TABLE}\ndelete table inet ${LAB_INTERCEPT_TABLE}\n`);
}

/** `ip netns exec moat-gw nft -f -` with the script on stdin. */
function nftInGateway(script: string): Promise<void> {
  const [ip, ...args] = execInNamespaceArgv(LAB_NAMESPACES.gw, ['nft', '-f', '-']);
  return new Promise((resolve, reject) => {
    const child = spawn(ip, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new CommandError(ip, args, code, stderr));
    });
    child.stdin.end(script);
  });
}
