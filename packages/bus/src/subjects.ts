import type { EventEngine } from '@moat/log';

/** Every NATS subject Moat uses, in one place. */
export const subjects = {
  /** Announces a new current policy version; payload `{version, sha256}`. */
  policyChanged: 'policy.changed',
  /** Broadcast status request: every instance of every service answers. */
  statusAll: 'moat.status',
  /** Status of one service's instances. */
  status: (service: string) => `moat.status.${service}`,
  /** A read-only question to every instance of a service (`moatctl show sessions`, `show qos`). */
  query: (service: string, name: string) => `moat.query.${service}.${name}`,
  /** Security and audit events, `events.<engine>.<action>`. */
  event: (engine: EventEngine, action: string) => `events.${engine}.${action}`,
  eventsAll: 'events.>',
  /** Antivirus scan work queue. */
  scanRequest: 'scan.request',
} as const;
