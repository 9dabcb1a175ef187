/**
 * Makes the kernel's qdiscs match the policy's qos section. Everything the new policy needs is
 * checked before anything changes (every shaped interface exists), so a policy this host cannot
 * carry out leaves the running trees as they are; an unchanged tree is not touched at all; and a
 * tree that tc refuses halfway is put back as it was.
 */
import type { Policy } from '@moat/policy';
import { planQos, type TreePlan, treeKey } from './plan.js';
import { type ClassStats, Tc, type TcOptions, treeCommands } from './tc.js';

export interface ShapeOutcome {
  /** Trees (`<interface> <direction>`) written, left as they were, and removed. */
  applied: string[];
  unchanged: string[];
  removed: string[];
  applyMs: number;
}

export interface ClassView {
  interface: string;
  direction: TreePlan['direction'];
  device: string;
  class: string;
  /** Configured bits per second. */
  rate: number;
  ceil: number;
  priority: number;
  isDefault: boolean;
  stats: ClassStats | undefined;
}

/** The policy asks for something this host cannot do; nothing was changed. */
export class QosPolicyError extends Error {
  override name = 'QosPolicyError';
}

const label = (tree: TreePlan) => `${tree.interface} ${tree.direction}`;

export class Shaper {
  private readonly tc: Tc;
  /** The trees this process has written, by device. */
  private applied = new Map<string, TreePlan>();

  constructor(options: TcOptions = {}) {
    this.tc = new Tc(options);
  }

  /** The trees in force (what the last successful apply wrote). */
  get trees(): TreePlan[] {
    return [...this.applied.values()];
  }

  async apply(policy: Policy): Promise<ShapeOutcome> {
    const started = performance.now();
    const wanted = planQos(policy);
    const links = await this.tc.links();
    const missing = [...new Set(wanted.map((tree) => tree.interface))].filter((name) => !links.has(name));
    if (missing.length > 0) {
      throw new QosPolicyError(
        `qos.interfaces names ${missing.map((m) => `"${m}"`).join(', ')}, which this host does not have (it has ${[...links].sort().join(', ')}); the running shaping is unchanged`,
      );
    }
    const outcome: ShapeOutcome = { applied: [], unchanged: [], removed: [], applyMs: 0 };
    const wantedDevices = new Set(wanted.map((tree) => tree.device));
    for (const tree of wanted) {
      const previous = this.applied.get(tree.device);
      if (previous && treeKey(previous) === treeKey(tree)) {
        outcome.unchanged.push(label(tree));
        continue;
      }
      await this.write(tree, previous);
      outcome.applied.push(label(tree));
    }
    for (const [device, tree] of this.applied) {
      if (wantedDevices.has(device)) continue;
      await this.remove(tree);
      outcome.removed.push(label(tree));
    }
    outcome.applyMs = performance.now() - started;
    return outcome;
  }

  /** Writes one tree; when tc refuses part of it, puts the previous one back and rethrows. */
  private async write(tree: TreePlan, previous: TreePlan | undefined): Promise<void> {
    try {
      if (tree.direction === 'ingress') await this.tc.ensureIfb(tree.device);
      await this.tc.batch(await this.commandsFor(tree));
      // the IFB's tree is in place before traffic is sent to it
      if (tree.direction === 'ingress') await this.redirectIngress(tree.interface, tree.device);
      this.applied.set(tree.device, tree);
    } catch (err) {
      if (previous) {
        await this.tc.batch(await this.commandsFor(previous)).catch(() => undefined);
      }
      throw new Error(`tc refused the ${label(tree)} tree: ${(err as Error).message}`);
    }
  }

  private async commandsFor(tree: TreePlan): Promise<string[]> {
    const current = await this.tc.rootQdisc(tree.device);
    const minors =
      current?.kind === 'htb' ? (await this.tc.classStats(tree.device)).map((stats) => stats.minor) : [];
    return treeCommands(tree, current, minors);
  }

  /** Sends everything arriving on `iface` through the IFB `ifb` first, where the ingress tree shapes it. */
  private async redirectIngress(iface: string, ifb: string): Promise<void> {
    if ((await this.tc.ingressRedirects(iface)).includes(ifb)) return;
    await this.tc.batch([
      `qdisc replace dev ${iface} handle ffff: ingress`,
      `filter add dev ${iface} parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
    ]);
  }

  private async remove(tree: TreePlan): Promise<void> {
    if (tree.direction === 'ingress') {
      if ((await this.tc.ingressRedirects(tree.interface)).includes(tree.device)) {
        await this.tc.batch([`qdisc del dev ${tree.interface} ingress`]);
      }
      await this.tc.deleteIfb(tree.device);
    } else {
      const root = await this.tc.rootQdisc(tree.device);
      if (root?.kind === 'htb' && root.handle === '1:')
        await this.tc.batch([`qdisc del dev ${tree.device} root`]);
    }
    this.applied.delete(tree.device);
  }

  /** Removes every tree this process wrote (for tests and `moat lab down`-like cleanups). */
  async removeAll(): Promise<void> {
    for (const tree of [...this.applied.values()]) await this.remove(tree);
  }

  /** Every class of every tree in force, with the kernel's statistics. */
  async classes(): Promise<ClassView[]> {
    const views: ClassView[] = [];
    for (const tree of this.applied.values()) {
      const stats = await this.tc.classStats(tree.device).catch(() => []);
      for (const cls of tree.classes) {
        views.push({
          interface: tree.interface,
          direction: tree.direction,
          device: tree.device,
          class: cls.name,
          rate: cls.rate,
          ceil: cls.ceil,
          priority: cls.priority,
          isDefault: cls.name === tree.defaultClass,
          stats: stats.find((s) => s.minor === cls.minor),
        });
      }
    }
    return views;
  }
}
