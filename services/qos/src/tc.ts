/**
 * The qos service's kernel side through iproute2: `tc -batch` scripts for HTB trees, `ip link` for
 * IFB devices, and parsing of what the kernel holds. Every command runs through one command prefix,
 * so the lab and the tests can manage a gateway namespace (`ip netns exec <ns>`).
 */
import type { ClassStats } from '@moat/bus';
import { runTool } from '@moat/service-kit';
import { type ClassPlan, htbQuantum, IFB_PREFIX, ROOT_CLASS_MINOR, type TreePlan } from './plan.js';

export interface TcOptions {
  /** Leading words before `tc` / `ip`, e.g. `['ip', 'netns', 'exec', 'moat-gw']`; default none. */
  prefix?: readonly string[];
  timeoutMs?: number;
}

export interface RootQdisc {
  kind: string;
  handle: string;
  /** HTB's default minor (HTB only). */
  defaultMinor?: number;
}

const HEX = (n: number) => n.toString(16);

export class Tc {
  constructor(private readonly options: TcOptions = {}) {}

  private run(tool: 'tc' | 'ip', args: readonly string[], stdin?: string): Promise<string> {
    return runTool([...(this.options.prefix ?? []), tool], args, {
      ...(stdin === undefined ? {} : { stdin }),
      timeoutMs: this.options.timeoutMs ?? 30_000,
      hint: 'is iproute2 installed?',
    });
  }

  /** Runs tc commands, one per line, in one tc process; tc stops at the first that fails. */
  async batch(commands: readonly string[]): Promise<void> {
    if (commands.length === 0) return;
    await this.run('tc', ['-batch', '-'], `${commands.join('\n')}\n`);
  }

  /** Names of the links in the namespace. */
  async links(): Promise<Set<string>> {
    const links = JSON.parse(await this.run('ip', ['-j', 'link', 'show'])) as { ifname: string }[];
    return new Set(links.map((link) => link.ifname));
  }

  async ensureIfb(name: string): Promise<void> {
    if (!name.startsWith(IFB_PREFIX)) throw new Error(`refusing to manage ${name}: not a Moat IFB`);
    if (!(await this.links()).has(name)) await this.run('ip', ['link', 'add', 'name', name, 'type', 'ifb']);
    await this.run('ip', ['link', 'set', 'dev', name, 'up']);
  }

  async deleteIfb(name: string): Promise<void> {
    if (!name.startsWith(IFB_PREFIX)) throw new Error(`refusing to delete ${name}: not a Moat IFB`);
    if ((await this.links()).has(name)) await this.run('ip', ['link', 'del', 'dev', name]);
  }

  async qdiscs(
    device: string,
  ): Promise<{ kind: string; handle: string; root?: boolean; options?: Record<string, unknown> }[]> {
    return JSON.parse(await this.run('tc', ['-j', 'qdisc', 'show', 'dev', device])) as {
      kind: string;
      handle: string;
      root?: boolean;
      options?: Record<string, unknown>;
    }[];
  }

  async rootQdisc(device: string): Promise<RootQdisc | undefined> {
    const root = (await this.qdiscs(device)).find((q) => q.root);
    if (!root) return undefined;
    const defaultText = root.options?.default;
    return {
      kind: root.kind,
      handle: root.handle,
      ...(typeof defaultText === 'string' ? { defaultMinor: Number.parseInt(defaultText, 16) } : {}),
    };
  }

  /** Devices the ingress of `device` is redirected to by a mirred filter. */
  async ingressRedirects(device: string): Promise<string[]> {
    if (!(await this.qdiscs(device)).some((q) => q.kind === 'ingress')) return [];
    const filters = JSON.parse(
      await this.run('tc', ['-j', 'filter', 'show', 'dev', device, 'parent', 'ffff:']),
    ) as { options?: { actions?: { kind: string; to_dev?: string }[] } }[];
    return filters.flatMap((f) =>
      (f.options?.actions ?? []).flatMap((a) => (a.kind === 'mirred' && a.to_dev ? [a.to_dev] : [])),
    );
  }

  /** Filters on the ingress qdisc of `device` (Moat's and anyone else's). */
  async ingressFilterCount(device: string): Promise<number> {
    if (!(await this.qdiscs(device)).some((q) => q.kind === 'ingress')) return 0;
    const filters = JSON.parse(
      await this.run('tc', ['-j', 'filter', 'show', 'dev', device, 'parent', 'ffff:']),
    ) as { options?: { actions?: unknown[] } }[];
    return filters.filter((f) => (f.options?.actions ?? []).length > 0).length;
  }

  /** Per-class statistics of the HTB tree on `device` (tc prints HTB class stats only as text). */
  async classStats(device: string): Promise<ClassStats[]> {
    return parseClassStats(await this.run('tc', ['-s', 'class', 'show', 'dev', device]));
  }
}

/** Parses `tc -s class show` output for HTB classes of major 1. */
export function parseClassStats(text: string): ClassStats[] {
  const stats: ClassStats[] = [];
  for (const block of text.split(/\n(?=class )/)) {
    const head = /^class htb 1:([0-9a-f]+) /.exec(block);
    if (!head?.[1]) continue;
    const sent = /Sent (\d+) bytes (\d+) pkt \(dropped (\d+), overlimits (\d+)/.exec(block);
    const rate = /\n\s*rate (\d+(?:\.\d+)?)([KMG]?)bit (\d+)pps/.exec(block);
    const backlog = /backlog (\d+(?:\.\d+)?)([KMG]?)b (\d+)p/.exec(block);
    const borrowed = /borrowed: (\d+)/.exec(block);
    const scale = (unit: string | undefined) => ({ K: 1e3, M: 1e6, G: 1e9 })[unit as 'K'] ?? 1;
    stats.push({
      minor: Number.parseInt(head[1], 16),
      bytes: Number(sent?.[1] ?? 0),
      packets: Number(sent?.[2] ?? 0),
      drops: Number(sent?.[3] ?? 0),
      overlimits: Number(sent?.[4] ?? 0),
      ...(rate ? { rateBps: Math.round(Number(rate[1]) * scale(rate[2])), ratePps: Number(rate[3]) } : {}),
      backlogBytes: backlog ? Math.round(Number(backlog[1]) * scale(backlog[2])) : 0,
      backlogPackets: Number(backlog?.[3] ?? 0),
      borrowed: Number(borrowed?.[1] ?? 0),
    });
  }
  return stats;
}

/** Burst for a rate: 2 ms at that rate, at least one jumbo-free frame and a little (tc's own minimum). */
function burstBytes(rateBitsPerSecond: number): number {
  return Math.max(1600, Math.round((rateBitsPerSecond / 8) * 0.002));
}

function htbClass(
  device: string,
  parent: string,
  minor: number,
  rate: number,
  ceil: number,
  rest: string,
): string {
  return (
    `class replace dev ${device} parent ${parent} classid 1:${HEX(minor)} estimator 1sec 4sec ` +
    `htb rate ${rate}bit ceil ${ceil}bit burst ${burstBytes(rate)} cburst ${burstBytes(ceil)}${rest}`
  );
}

/**
 * tc commands that make `device` hold `tree`. `current` is what the kernel holds: when it is already
 * an HTB 1: with the same default class, the classes are replaced in place (no gap in shaping, and the
 * statistics keep counting); otherwise the root qdisc is replaced. Classes the tree no longer has are
 * deleted.
 */
export function treeCommands(
  tree: TreePlan,
  current: RootQdisc | undefined,
  currentMinors: readonly number[],
): string[] {
  const d = tree.device;
  const inPlace =
    current?.kind === 'htb' && current.handle === '1:' && current.defaultMinor === tree.defaultMinor;
  const commands: string[] = [];
  if (!inPlace) {
    // an HTB's default class cannot be changed in place: delete the old tree first
    if (current?.kind === 'htb' && current.handle === '1:') commands.push(`qdisc del dev ${d} root`);
    commands.push(`qdisc replace dev ${d} root handle 1: htb default ${HEX(tree.defaultMinor)}`);
  }
  commands.push(
    htbClass(d, '1:', ROOT_CLASS_MINOR, tree.rate, tree.rate, ` quantum ${htbQuantum(tree.rate)}`),
  );
  for (const cls of tree.classes) commands.push(classCommand(d, cls));
  if (inPlace) {
    const wanted = new Set([ROOT_CLASS_MINOR, ...tree.classes.map((cls) => cls.minor)]);
    for (const minor of currentMinors)
      if (!wanted.has(minor)) commands.push(`class del dev ${d} classid 1:${HEX(minor)}`);
  }
  return commands;
}

function classCommand(device: string, cls: ClassPlan): string {
  return htbClass(
    device,
    `1:${HEX(ROOT_CLASS_MINOR)}`,
    cls.minor,
    cls.rate,
    cls.ceil,
    ` prio ${cls.priority} quantum ${cls.quantum}`,
  );
}
