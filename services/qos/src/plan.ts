/**
 * What the policy's qos section asks of each interface: an HTB tree per direction. Egress is shaped
 * on the interface itself; ingress on an IFB device that the interface's ingress redirects to. Class
 * ids come from qosClassIds(), the same ids the firewall writes into packet priorities, which is how
 * packets find their class without tc filters.
 */
import { createHash } from 'node:crypto';
import { type Policy, qosClassIds } from '@moat/policy';

export type Direction = 'egress' | 'ingress';

export interface ClassPlan {
  name: string;
  /** HTB minor id (the class is 1:<minor>). */
  minor: number;
  /** Bits per second. */
  rate: number;
  ceil: number;
  priority: number;
  /** Bytes a class may send per round when borrowing (see htbQuantum). */
  quantum: number;
}

export interface TreePlan {
  /** The policy's interface name. */
  interface: string;
  direction: Direction;
  /** The device the HTB qdisc sits on: the interface (egress) or its IFB (ingress). */
  device: string;
  /** Bits per second for the whole tree (root class 1:1). */
  rate: number;
  defaultClass: string;
  defaultMinor: number;
  classes: ClassPlan[];
}

/** The HTB root class under which every policy class hangs (1:1). */
export const ROOT_CLASS_MINOR = 1;

/** Prefix of the IFB devices the qos service creates; any device so named is Moat's. */
export const IFB_PREFIX = 'moq-';

const MAX_IFNAME = 15;

/**
 * The IFB device for an interface's ingress: `moq-<interface>`, or for long names a shortened name
 * with a hash, so two long interface names never share an IFB.
 */
export function ifbName(iface: string): string {
  const plain = `${IFB_PREFIX}${iface}`;
  if (plain.length <= MAX_IFNAME) return plain;
  const suffix = createHash('sha256').update(iface).digest('hex').slice(0, 4);
  return `${IFB_PREFIX}${iface.slice(0, MAX_IFNAME - IFB_PREFIX.length - suffix.length - 1)}-${suffix}`;
}

/**
 * HTB's quantum (bytes a class sends per turn when borrowing spare bandwidth): proportional to the
 * class's rate, so spare bandwidth is shared in proportion to the rates, as 1/100 of a second at the
 * rate (HTB's own default of 1/10 exceeds the kernel's 200,000-byte limit from 16 Mbit/s on). Kept
 * between one full-size frame and that limit, so classes above 160 Mbit/s borrow equally.
 */
export function htbQuantum(rateBitsPerSecond: number): number {
  return Math.min(200_000, Math.max(1514, Math.round(rateBitsPerSecond / 8 / 100)));
}

/** Every tree the policy asks for, egress first, in interface name order. */
export function planQos(policy: Policy): TreePlan[] {
  const qos = policy.qos;
  if (!qos) return [];
  const ids = qosClassIds(policy);
  const trees: TreePlan[] = [];
  for (const [iface, shaped] of Object.entries(qos.interfaces).sort(([a], [b]) => a.localeCompare(b))) {
    const members = Object.entries(qos.classes)
      .filter(([, cls]) => cls.interface === undefined || cls.interface === iface)
      .sort(([a], [b]) => a.localeCompare(b));
    const tree = (direction: Direction, device: string, rate: number): TreePlan => ({
      interface: iface,
      direction,
      device,
      rate,
      defaultClass: shaped.defaultClass,
      defaultMinor: ids.get(shaped.defaultClass) ?? 0,
      classes: members.map(([name, cls]) => {
        const ceil = Math.min(cls.ceil ?? rate, rate);
        return {
          name,
          minor: ids.get(name) ?? 0,
          rate: Math.min(cls.rate, ceil),
          ceil,
          priority: cls.priority,
          quantum: htbQuantum(cls.rate),
        };
      }),
    });
    trees.push(tree('egress', iface, shaped.egressRate));
    if (shaped.ingressRate !== undefined) trees.push(tree('ingress', ifbName(iface), shaped.ingressRate));
  }
  return trees;
}

/** A stable text of a tree, to tell whether it changed. */
export function treeKey(tree: TreePlan): string {
  return JSON.stringify(tree);
}
