/**
 * Makes the kernel's qdiscs match the policy's qos section. What the new policy needs is checked
 * before anything changes (every shaped interface exists, no eBPF ingress is in the way), so a
 * policy this host cannot carry out leaves the running trees as they are. An unchanged tree that the
 * kernel still holds is not touched. When tc refuses part of a change, what the change had written
 * is put back: the previous trees, or, where there was none, no Moat tree (the kernel's default qdisc).
 */
import type { QosClassView } from '@moat/bus';
import type { Policy } from '@moat/policy';
import { planQos, type TreePlan, treeKey } from './plan.js';
import { Tc, type TcOptions, treeCommands } from './tc.js';

export interface ShapeOutcome {
  /** Trees (`<interface> <direction>`) written, left as they were, and removed. */
  applied: string[];
  unchanged: string[];
  removed: string[];
  applyMs: number;
}

/** A class as `moatctl show qos` and the metrics see it. */
export type ClassView = QosClassView;

/** The policy asks for something this host cannot do; nothing was changed. */
export class QosPolicyError extends Error {
  override name = 'QosPolicyError';
}

const label = (tree: TreePlan) => `${tree.interface} ${tree.direction}`;

/** Priority of Moat's ingress redirect filter, by which it is found and deleted among others'. */
const INGRESS_FILTER_PREF = 4900;

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
    await this.check(wanted);
    const outcome: ShapeOutcome = { applied: [], unchanged: [], removed: [], applyMs: 0 };
    // what this change wrote, in order, with what was there before: undone if a later step fails
    const written: { tree: TreePlan; previous: TreePlan | undefined }[] = [];
    const wantedDevices = new Set(wanted.map((tree) => tree.device));
    try {
      for (const tree of wanted) {
        const previous = this.applied.get(tree.device);
        if (previous && treeKey(previous) === treeKey(tree) && (await this.inForce(tree))) {
          outcome.unchanged.push(label(tree));
          continue;
        }
        written.push({ tree, previous });
        await this.write(tree);
        this.applied.set(tree.device, tree);
        outcome.applied.push(label(tree));
      }
      for (const [device, tree] of this.applied) {
        if (wantedDevices.has(device)) continue;
        written.push({ tree, previous: tree });
        await this.remove(tree);
        outcome.removed.push(label(tree));
      }
    } catch (err) {
      const undone = await this.undo(written);
      throw new Error(
        `tc refused part of the change: ${(err as Error).message}; ${undone ? 'the trees it had written were put back' : 'putting the previous trees back failed too, see the log'}`,
      );
    }
    outcome.applyMs = performance.now() - started;
    return outcome;
  }

  /**
   * Refuses a policy this host cannot carry out, before anything changes: a shaped interface that
   * does not exist, or ingress shaping on an interface whose ingress belongs to a clsact qdisc (an
   * eBPF dataplane such as a CNI's), which an ingress qdisc would displace.
   */
  private async check(wanted: TreePlan[]): Promise<void> {
    const links = await this.tc.links();
    const missing = [...new Set(wanted.map((tree) => tree.interface))].filter((name) => !links.has(name));
    if (missing.length > 0) {
      throw new QosPolicyError(
        `qos.interfaces names ${missing.map((m) => `"${m}"`).join(', ')}, which this host does not have (it has ${[...links].sort().join(', ')}); the running shaping is unchanged`,
      );
    }
    for (const tree of wanted) {
      if (tree.direction !== 'ingress') continue;
      if ((await this.tc.qdiscs(tree.interface)).some((q) => q.kind === 'clsact')) {
        throw new QosPolicyError(
          `qos.interfaces.${tree.interface}.ingressRate: ${tree.interface} has a clsact qdisc (an eBPF program such as a CNI's owns its ingress), which ingress shaping would displace; remove ingressRate or shape this traffic on the other interface's egress. The running shaping is unchanged`,
        );
      }
    }
  }

  /** Whether the kernel still holds `tree` as written (an interface recreated or a qdisc deleted by hand loses it). */
  private async inForce(tree: TreePlan): Promise<boolean> {
    const root = await this.tc.rootQdisc(tree.device).catch(() => undefined);
    if (root?.kind !== 'htb' || root.handle !== '1:' || root.defaultMinor !== tree.defaultMinor) return false;
    return (
      tree.direction === 'egress' || (await this.tc.ingressRedirects(tree.interface)).includes(tree.device)
    );
  }

  /** Puts back, newest first, what a failed change wrote; false when that failed as well. */
  private async undo(written: { tree: TreePlan; previous: TreePlan | undefined }[]): Promise<boolean> {
    let ok = true;
    for (const { tree, previous } of written.reverse()) {
      try {
        if (previous) {
          await this.write(previous);
          this.applied.set(previous.device, previous);
        } else await this.remove(tree);
      } catch {
        ok = false;
      }
    }
    return ok;
  }

  private async write(tree: TreePlan): Promise<void> {
    if (tree.direction === 'ingress') await this.tc.ensureIfb(tree.device);
    await this.tc.batch(await this.commandsFor(tree));
    // the IFB's tree is in place before traffic is sent to it
    if (tree.direction === 'ingress') await this.redirectIngress(tree.interface, tree.device);
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
      `filter add dev ${iface} parent ffff: protocol all pref ${INGRESS_FILTER_PREF} u32 match u32 0 0 action mirred egress redirect dev ${ifb}`,
    ]);
  }

  /**
   * Takes a tree away: the root qdisc (egress), or Moat's redirect filter, the ingress qdisc when
   * nothing else uses it, and the IFB (ingress). A device that is gone has nothing left to remove.
   */
  private async remove(tree: TreePlan): Promise<void> {
    const links = await this.tc.links();
    if (tree.direction === 'ingress') {
      if (
        links.has(tree.interface) &&
        (await this.tc.ingressRedirects(tree.interface)).includes(tree.device)
      ) {
        await this.tc.batch([`filter del dev ${tree.interface} parent ffff: pref ${INGRESS_FILTER_PREF}`]);
        if ((await this.tc.ingressFilterCount(tree.interface)) === 0) {
          await this.tc.batch([`qdisc del dev ${tree.interface} ingress`]);
        }
      }
      await this.tc.deleteIfb(tree.device);
    } else if (links.has(tree.device)) {
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
