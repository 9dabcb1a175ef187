import type { ServiceDefinition, ServicePorts } from '../services.js';

/**
 * Ports for `moat dev`. Without a base port: the usual defaults (NATS 4222,
 * its monitor 8222, Redis 6379, each service's registry ports). With one, every
 * port is allocated in sequence from it — nats, nats monitor, redis, then
 * http, grpc or proxy, and ca for each registry entry in order — so two dev runtimes (or a test)
 * can live side by side.
 */

export interface DevPorts {
  nats: number;
  natsMonitor: number;
  redis: number;
  services: Record<string, ServicePorts>;
}

export const DEFAULT_INFRA_PORTS = { nats: 4222, natsMonitor: 8222, redis: 6379 } as const;

const PORTS_BEFORE_SERVICES = 3;
const PORTS_PER_SERVICE = 3;

/** How many ports a base-port plan takes, for validating the base. */
export const portsNeeded = (registry: readonly ServiceDefinition[]): number =>
  PORTS_BEFORE_SERVICES + PORTS_PER_SERVICE * registry.length;

export function planDevPorts(registry: readonly ServiceDefinition[], basePort?: number): DevPorts {
  if (basePort === undefined) {
    return {
      ...DEFAULT_INFRA_PORTS,
      services: Object.fromEntries(registry.map((s) => [s.name, { ...s.defaultPorts }])),
    };
  }
  const services: Record<string, ServicePorts> = {};
  registry.forEach((service, index) => {
    const first = basePort + PORTS_BEFORE_SERVICES + PORTS_PER_SERVICE * index;
    services[service.name] = {
      http: first,
      // a service serves gRPC or a proxy port, never both: they share the second slot
      ...(service.defaultPorts.grpc === undefined ? {} : { grpc: first + 1 }),
      ...(service.defaultPorts.proxy === undefined ? {} : { proxy: first + 1 }),
      ...(service.defaultPorts.ca === undefined ? {} : { ca: first + 2 }),
      ...(service.defaultPorts.clamd === undefined ? {} : { clamd: first + 1 }),
    };
  });
  return { nats: basePort, natsMonitor: basePort + 1, redis: basePort + 2, services };
}

export function allPorts(ports: DevPorts): { name: string; port: number }[] {
  return [
    { name: 'nats', port: ports.nats },
    { name: 'nats monitor', port: ports.natsMonitor },
    { name: 'redis', port: ports.redis },
    ...Object.entries(ports.services).flatMap(([name, p]) => [
      { name: `${name} http`, port: p.http },
      ...(p.grpc === undefined ? [] : [{ name: `${name} grpc`, port: p.grpc }]),
      ...(p.proxy === undefined ? [] : [{ name: `${name} proxy`, port: p.proxy }]),
      ...(p.ca === undefined ? [] : [{ name: `${name} ca`, port: p.ca }]),
      ...(p.clamd === undefined ? [] : [{ name: `${name} clamd`, port: p.clamd }]),
    ]),
  ];
}
