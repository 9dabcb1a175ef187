import { type Bus, subjects } from '@moat/bus';
import type { PolicyFollowerState } from '@moat/policy';
import type { Subscription } from '@nats-io/transport-node';

/** What one service instance reports on `moat.status.<service>` and `moat.status`. */
export interface ServiceStatus {
  service: string;
  instance: string;
  version: string;
  startedAt: string;
  healthy: boolean;
  ready: boolean;
  checks: Record<string, string>;
  policy: PolicyFollowerState;
  details?: Record<string, unknown>;
}

/** Answers status requests addressed to this service and broadcast ones. */
export function serveStatus(bus: Bus, service: string, report: () => Promise<ServiceStatus>): Subscription[] {
  const answer = async (m: { respond(data: unknown): void }) => m.respond(await report());
  return [bus.subscribe(subjects.status(service), answer), bus.subscribe(subjects.statusAll, answer)];
}
