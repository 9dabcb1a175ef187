/** Services (protocol and ports) as nft matches. */
import type { IpFamily, PortRange, Service } from '@moat/policy';
import { anonymousSet } from './syntax.js';

/** One way a service list can match: nft text, limited to a family when the protocol is (ICMP). */
export interface ServiceMatch {
  text: string;
  family?: IpFamily;
  /** The layer-4 protocol the match pins, when it pins one (a port forward and reject need it). */
  protocol?: 'tcp' | 'udp';
}

function portList(ranges: readonly PortRange[]): string {
  const sorted = [...ranges].sort((a, b) => a.from - b.from);
  const merged: PortRange[] = [];
  for (const range of sorted) {
    const last = merged.at(-1);
    if (last && range.from <= last.to + 1) last.to = Math.max(last.to, range.to);
    else merged.push({ ...range });
  }
  return anonymousSet(merged.map(({ from, to }) => (from === to ? String(from) : `${from}-${to}`)));
}

/**
 * The matches for a list of services (undefined = any). TCP and UDP services without source ports
 * share one match per protocol; every other service gets its own.
 */
export function serviceMatches(services: readonly Service[] | undefined): ServiceMatch[] {
  if (services === undefined || services.some((service) => service.protocol === 'any')) return [{ text: '' }];
  const matches: ServiceMatch[] = [];
  for (const protocol of ['tcp', 'udp'] as const) {
    const plain = services.filter(
      (service): service is Extract<Service, { protocol: typeof protocol }> =>
        service.protocol === protocol && service.sourcePorts === undefined,
    );
    if (plain.length > 0)
      matches.push({ text: `${protocol} dport ${portList(plain.flatMap((s) => s.ports))}`, protocol });
  }
  for (const service of services) {
    switch (service.protocol) {
      case 'tcp':
      case 'udp':
        if (service.sourcePorts !== undefined)
          matches.push({
            text: `${service.protocol} sport ${portList(service.sourcePorts)} ${service.protocol} dport ${portList(service.ports)}`,
            protocol: service.protocol,
          });
        break;
      case 'icmp':
      case 'icmpv6': {
        const family = service.protocol === 'icmp' ? 4 : 6;
        const type = service.icmpType === undefined ? '' : ` ${service.protocol} type ${service.icmpType}`;
        const code = service.icmpCode === undefined ? '' : ` ${service.protocol} code ${service.icmpCode}`;
        const l4 = service.protocol === 'icmp' ? 'icmp' : 'ipv6-icmp';
        matches.push({ text: `meta l4proto ${l4}${type}${code}`, family });
        break;
      }
      case 'esp':
        matches.push({ text: 'meta l4proto esp' });
        break;
    }
  }
  return matches;
}
