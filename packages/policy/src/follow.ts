import { type Bus, subjects } from '@moat/bus';
import type { Logger } from '@moat/log';
import type { PolicyRecord, PolicyStore } from './store.js';

export interface PolicyChangedMessage {
  version: number;
  sha256: string;
}

/** Tells every service that a new policy version is current. */
export function announcePolicyChange(bus: Bus, msg: PolicyChangedMessage): void {
  bus.publish(subjects.policyChanged, msg);
}

export interface AppliedPolicy {
  version: number;
  sha256: string;
  /** When the version was stored, and when this service finished applying it. */
  createdAt: string;
  appliedAt: string;
  /** appliedAt − createdAt: how long the policy took to reach and take effect here. */
  latencyMs: number;
}

export interface PolicyFollowerState {
  applied?: AppliedPolicy;
  /** The last version that failed to apply, and why (the previous one stays in force). */
  failed?: { version: number; error: string; at: string };
}

export interface PolicyFollower {
  state(): PolicyFollowerState;
  /** Loads and applies the current version now if it is newer than the applied one. */
  sync(): Promise<void>;
  stop(): void;
}

export interface FollowPolicyOptions {
  bus: Bus;
  store: PolicyStore;
  log: Logger;
  /** Applies a policy to the service's engine; throwing keeps the previous policy in force. */
  apply: (record: PolicyRecord) => Promise<void> | void;
  /** Safety net for a missed announcement (NATS outage): re-check the store this often. */
  resyncIntervalMs?: number;
}

/**
 * Keeps a service on the current policy: applies the current version at start (so a service
 * that was down during a change catches up), then each announced version, one at a time.
 */
export async function followPolicy(opts: FollowPolicyOptions): Promise<PolicyFollower> {
  const state: PolicyFollowerState = {};
  let running: Promise<void> = Promise.resolve();

  const applyCurrent = async () => {
    const current = await opts.store.currentVersion();
    if (current === 0 || current === state.applied?.version || current === state.failed?.version) return;
    let record: PolicyRecord | undefined;
    try {
      record = await opts.store.get(current);
      await opts.apply(record);
      const appliedAt = new Date();
      state.applied = {
        version: record.version,
        sha256: record.sha256,
        createdAt: record.createdAt,
        appliedAt: appliedAt.toISOString(),
        latencyMs: Math.max(0, appliedAt.getTime() - Date.parse(record.createdAt)),
      };
      delete state.failed;
      opts.log.info({ policyVersion: record.version, latencyMs: state.applied.latencyMs }, 'policy applied');
    } catch (err) {
      state.failed = { version: current, error: (err as Error).message, at: new Date().toISOString() };
      opts.log.error(
        { err, policyVersion: current },
        'policy failed to apply; the previous one stays in force',
      );
    }
  };
  // Serialise: announcements may arrive while an apply is still running.
  const sync = () => {
    running = running.then(applyCurrent, applyCurrent);
    return running;
  };

  const sub = opts.bus.subscribe<PolicyChangedMessage>(subjects.policyChanged, () => sync());
  await opts.bus.nc.flush();
  await sync();
  const timer = setInterval(() => void sync().catch(() => undefined), opts.resyncIntervalMs ?? 30_000);
  timer.unref();

  return {
    state: () => ({ ...state }),
    sync,
    stop() {
      clearInterval(timer);
      sub.unsubscribe();
    },
  };
}
