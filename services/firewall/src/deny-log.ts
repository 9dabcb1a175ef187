/**
 * Denied flows as events. The ruleset logs each denied flow to an nflog group (at most 50 lines a
 * second per rule). ulogd (Debian's ulogd2 with ulogd2-json), which this module supervises, reads
 * the group and hands each packet over as one JSON line on a unix socket that this process serves.
 * Node cannot open netlink sockets itself, and ulogd is the established nflog reader.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import type { EventInput, Logger } from '@moat/log';
import { DENY_LOG_PREFIX } from './render/ruleset.js';

export interface DeniedFlow {
  rule: string;
  protocol: string;
  source: { ip?: string; port?: number; interface?: string };
  destination: { ip?: string; port?: number; interface?: string };
}

const PROTOCOLS: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 50: 'esp', 58: 'ipv6-icmp' };
const DENY_PREFIX = new RegExp(`^${DENY_LOG_PREFIX} (.+): $`);

/** One ulogd JSON record as a denied flow; undefined for a record that is not one of Moat's denies. */
export function parseUlogdRecord(line: string): DeniedFlow | undefined {
  let record: Record<string, unknown>;
  try {
    record = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  const prefix = typeof record['oob.prefix'] === 'string' ? record['oob.prefix'] : '';
  const match = DENY_PREFIX.exec(prefix);
  if (!match) return undefined;
  const text = (key: string) =>
    typeof record[key] === 'string' && record[key] !== '' ? (record[key] as string) : undefined;
  const num = (key: string) => (typeof record[key] === 'number' ? (record[key] as number) : undefined);
  const protocolNumber = num('ip.protocol') ?? num('ip6.nexthdr');
  const endpoint = (ip?: string, port?: number, iface?: string) => ({
    ...(ip ? { ip } : {}),
    ...(port !== undefined ? { port } : {}),
    ...(iface ? { interface: iface } : {}),
  });
  return {
    rule: match[1] as string,
    protocol:
      protocolNumber === undefined ? 'unknown' : (PROTOCOLS[protocolNumber] ?? String(protocolNumber)),
    source: endpoint(text('src_ip'), num('src_port'), text('oob.in')),
    destination: endpoint(text('dest_ip'), num('dest_port'), text('oob.out')),
  };
}

/** The `events.firewall.denied` event for a denied flow (after Junos RT_FLOW_SESSION_DENY). */
export function deniedFlowEvent(flow: DeniedFlow, instance: string, policyVersion?: number): EventInput {
  return {
    tag: 'RT_FLOW_SESSION_DENY',
    engine: 'firewall',
    action: 'denied',
    severity: 'notice',
    reason: flow.rule === 'default' ? 'no security rule permits the flow' : `denied by rule ${flow.rule}`,
    service: 'firewall',
    instance,
    rule: flow.rule,
    protocol: flow.protocol,
    source: flow.source,
    destination: flow.destination,
    ...(policyVersion !== undefined ? { policyVersion } : {}),
  };
}

const PLUGIN_DIR = '/usr/lib/x86_64-linux-gnu/ulogd';

/** ulogd's configuration: the nflog group, through the packet decoders, to JSON on `socket`. */
export function ulogdConfig(opts: {
  group: number;
  socket: string;
  logFile: string;
  pluginDir?: string;
}): string {
  const dir = opts.pluginDir ?? PLUGIN_DIR;
  const plugins = ['inppkt_NFLOG', 'raw2packet_BASE', 'filter_IFINDEX', 'filter_IP2STR', 'output_JSON'];
  return `[global]
logfile="${opts.logFile}"
loglevel=3
${plugins.map((p) => `plugin="${dir}/ulogd_${p}.so"`).join('\n')}
stack=log1:NFLOG,base1:BASE,ifi1:IFINDEX,ip2str1:IP2STR,json1:JSON

[log1]
group=${opts.group}

[json1]
sync=1
mode="unix"
file="${opts.socket}"
`;
}

export interface DenyLogOptions {
  /** The ulogd binary, with any leading command (e.g. `ip netns exec <ns>`). */
  command: readonly string[];
  group: number;
  /** A directory of its own for the configuration, ulogd's log and the socket. */
  runDir: string;
  log: Logger;
  onDenied(flow: DeniedFlow): void;
}

export type DenyLogState = 'starting' | 'running' | `unavailable: ${string}`;

/** Supervises ulogd and serves the socket it writes to. A crashed ulogd restarts with a growing delay. */
export class DenyLogReader {
  private server: Server | undefined;
  private child: ChildProcess | undefined;
  private stopped = false;
  private restartDelayMs = 500;
  private restartTimer: NodeJS.Timeout | undefined;
  state: DenyLogState = 'starting';

  constructor(private readonly opts: DenyLogOptions) {}

  async start(): Promise<void> {
    const { runDir, group } = this.opts;
    mkdirSync(runDir, { recursive: true, mode: 0o700 });
    const socket = join(runDir, 'deny.sock');
    rmSync(socket, { force: true });
    const config = join(runDir, 'ulogd.conf');
    writeFileSync(config, ulogdConfig({ group, socket, logFile: join(runDir, 'ulogd.log') }));
    this.server = createServer((connection) => {
      let pending = '';
      connection.setEncoding('utf8');
      connection.on('data', (chunk: string) => {
        pending += chunk;
        const lines = pending.split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) {
          const flow = parseUlogdRecord(line);
          if (flow) this.opts.onDenied(flow);
        }
      });
      connection.on('error', () => undefined);
    });
    await new Promise<void>((resolve, reject) => {
      this.server?.once('error', reject);
      this.server?.listen(socket, () => resolve());
    });
    this.spawnUlogd(config);
  }

  private spawnUlogd(config: string): void {
    if (this.stopped) return;
    const [cmd = 'ulogd', ...lead] = this.opts.command;
    const child = spawn(cmd, [...lead, '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const startedAt = Date.now();
    child.once('spawn', () => {
      this.state = 'running';
    });
    child.once('error', (err) => {
      this.state = `unavailable: cannot run ${cmd}: ${err.message} (install ulogd2 and ulogd2-json)`;
      this.opts.log.error({ err: err.message }, `denied flows are not reported: ${this.state}`);
    });
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopped) return;
      if (!this.state.startsWith('unavailable: cannot run')) {
        this.state = `unavailable: ulogd exited (${signal ?? code}), restarting`;
        this.opts.log.error(
          { code, signal, stderr: stderr.trim() },
          'ulogd exited; denied flows are not reported until it restarts',
        );
      }
      // a ulogd that ran for a while gets a quick restart; one that keeps dying waits longer
      this.restartDelayMs = Date.now() - startedAt > 30_000 ? 500 : Math.min(this.restartDelayMs * 2, 30_000);
      this.restartTimer = setTimeout(() => this.spawnUlogd(config), this.restartDelayMs);
      this.restartTimer.unref();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    rmSync(this.opts.runDir, { recursive: true, force: true });
  }
}
