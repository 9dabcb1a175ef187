/**
 * The answers of the read-only queries (`moat.query.<service>.<name>`, asked by `moatctl show …`
 * through control): one definition for the service that answers and the client that prints.
 */

/** One direction of a tracked flow, as conntrack lists it. */
export interface FlowTuple {
  source: string;
  destination: string;
  sourcePort?: number;
  destinationPort?: number;
  /** ICMP type and code. */
  icmpType?: number;
  icmpCode?: number;
  /** With conntrack accounting on (net.netfilter.nf_conntrack_acct). */
  packets?: number;
  bytes?: number;
}

/** One entry of the firewall's connection tracking table. */
export interface Session {
  family: 4 | 6;
  protocol: string;
  /** TCP state (ESTABLISHED, TIME_WAIT, …); absent for other protocols. */
  state?: string;
  /** Seconds until the entry expires without traffic. */
  timeout: number;
  /** As the initiator sent it. */
  original: FlowTuple;
  /** As the reply comes back: differs from the mirrored original when NAT rewrote the flow. */
  reply: FlowTuple;
  flags: string[];
  mark: number;
}

/** The firewall's answer to `sessions`. */
export interface SessionListing {
  /** Entries that matched the filter (can be more than listed). */
  matched: number;
  /** Entries in the table. */
  total: number;
  sessions: Session[];
}

/** The kernel's statistics of one HTB class. */
export interface ClassStats {
  /** The HTB minor id (1:<minor>). */
  minor: number;
  bytes: number;
  packets: number;
  drops: number;
  overlimits: number;
  /** Bits and packets per second from the kernel's rate estimator (undefined without one). */
  rateBps?: number;
  ratePps?: number;
  backlogBytes: number;
  backlogPackets: number;
  /** Times the class borrowed from its parent above its own rate. */
  borrowed: number;
}

/** One class of one shaped interface and direction: the qos service's answer to `classes` is a list. */
export interface QosClassView {
  interface: string;
  direction: 'egress' | 'ingress';
  /** The device the tree sits on: the interface, or its IFB for ingress. */
  device: string;
  class: string;
  /** Configured bits per second. */
  rate: number;
  ceil: number;
  priority: number;
  isDefault: boolean;
  /** Undefined when the kernel's statistics could not be read. */
  stats: ClassStats | undefined;
}
