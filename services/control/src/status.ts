import type { ServiceStatus } from '@moat/service-kit';

export interface InstanceView {
  service: string;
  instance: string;
  reachable: boolean;
  lagging: boolean;
  status?: ServiceStatus;
}

/**
 * Joins the instances that answered with the services expected to run: an expected service with
 * no instance is unreachable; an instance behind the current policy version is lagging.
 */
export function aggregateStatus(
  replies: ServiceStatus[],
  expectedServices: string[],
  currentVersion: number,
): InstanceView[] {
  const views: InstanceView[] = replies.map((s) => ({
    service: s.service,
    instance: s.instance,
    reachable: true,
    lagging: (s.policy.applied?.version ?? 0) < currentVersion,
    status: s,
  }));
  for (const service of expectedServices) {
    if (!replies.some((r) => r.service === service)) {
      views.push({ service, instance: '', reachable: false, lagging: currentVersion > 0 });
    }
  }
  return views.sort((a, b) => a.service.localeCompare(b.service) || a.instance.localeCompare(b.instance));
}
