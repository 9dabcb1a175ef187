/** The firewall's packet-test network, for other kernel-facing services' tests (qos). */
export { packetTestSkipReason } from './packets.js';
export { ADDR, createTopology, NS, removeTopology } from './topology.js';
