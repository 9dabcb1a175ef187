import { type Bus, publishEvent, subjects } from '@moat/bus';
import type { Logger } from '@moat/log';
import {
  type ApplyResult,
  announcePolicyChange,
  type PolicyChange,
  type PolicyRecord,
  type PolicyStore,
  type PolicyVersionInfo,
  type PolicyViolation,
  parsePolicyText,
} from '@moat/policy';
import type { QueryReply, ServiceStatus } from '@moat/service-kit';
import { aggregateStatus, type InstanceView } from './status.js';

export type ApplyOutcome =
  | { outcome: 'applied' | 'unchanged'; info: PolicyVersionInfo }
  | { outcome: 'valid'; info?: PolicyVersionInfo }
  | { outcome: 'rejected'; violations: PolicyViolation[]; info?: PolicyVersionInfo };

export interface ControlApiDeps {
  store: PolicyStore;
  bus: Bus;
  log: Logger;
  expectedServices: string[];
  statusWaitMs: number;
}

/** Longest a query waits for answers; a caller's larger wait is cut to it. */
const MAX_QUERY_WAIT_MS = 10_000;

/** A query named no service or query that could exist. */
export class QueryInvalidError extends Error {
  override name = 'QueryInvalidError';
}

/** Nobody answered a query. */
export class QueryUnansweredError extends Error {
  override name = 'QueryUnansweredError';
}

/** The control plane's operations, free of transport concerns (gRPC maps them in server.ts). */
export class ControlApi {
  constructor(private readonly deps: ControlApiDeps) {}

  async apply(req: {
    document: string;
    sourceName: string;
    author: string;
    comment: string;
    dryRun: boolean;
  }): Promise<ApplyOutcome> {
    const { store, log } = this.deps;
    const parsed = parsePolicyText(req.document, req.sourceName || undefined);
    if (!parsed.ok) {
      log.warn({ author: req.author, violations: parsed.violations.length }, 'policy rejected');
      this.event('rejected', 'POLICY_REJECTED', `${parsed.violations.length} violation(s)`, req.author, {
        violations: parsed.violations.slice(0, 20),
      });
      const current = await this.currentInfo();
      return { outcome: 'rejected', violations: parsed.violations, ...(current ? { info: current } : {}) };
    }
    if (req.dryRun) {
      const current = await this.currentInfo();
      return { outcome: 'valid', ...(current ? { info: current } : {}) };
    }
    const result = await store.apply(parsed.policy, {
      author: req.author,
      comment: req.comment,
      source: req.document,
    });
    return this.announce(result, req.author);
  }

  async rollback(version: number, author: string, comment: string): Promise<ApplyOutcome> {
    const result = await this.deps.store.rollback(version, { author, comment });
    return this.announce(result, author);
  }

  get(version: number): Promise<PolicyRecord> {
    return this.deps.store.get(version);
  }

  diff(from: number, to: number): Promise<PolicyChange[]> {
    return this.deps.store.diff(from, to);
  }

  async history(limit: number): Promise<{ versions: PolicyVersionInfo[]; current: number }> {
    const [versions, current] = await Promise.all([
      this.deps.store.history(limit > 0 ? limit : 50),
      this.deps.store.currentVersion(),
    ]);
    return { versions, current };
  }

  async status(waitMs: number): Promise<{ current: number; instances: InstanceView[] }> {
    const [replies, current] = await Promise.all([
      this.deps.bus.gather<ServiceStatus>(
        subjects.statusAll,
        {},
        waitMs > 0 ? waitMs : this.deps.statusWaitMs,
      ),
      this.deps.store.currentVersion(),
    ]);
    return { current, instances: aggregateStatus(replies, this.deps.expectedServices, current) };
  }

  /**
   * Asks every instance of `service` the read-only query `name` and returns their answers. No answer
   * in time means no instance of that service is running here (QueryUnansweredError).
   */
  async query(
    service: string,
    name: string,
    args: Record<string, unknown>,
    waitMs: number,
  ): Promise<QueryReply[]> {
    if (!/^[a-z][a-z0-9-]{0,39}$/.test(service) || !/^[a-z][a-z0-9-]{0,39}$/.test(name)) {
      throw new QueryInvalidError('service and query names are lowercase words (e.g. firewall, sessions)');
    }
    const replies = await this.deps.bus.gather<QueryReply>(
      subjects.query(service, name),
      args,
      waitMs > 0 ? Math.min(waitMs, MAX_QUERY_WAIT_MS) : 1000,
    );
    if (replies.length === 0) {
      throw new QueryUnansweredError(
        `no ${service} instance answered the ${name} query; is the ${service} service running? (moatctl status)`,
      );
    }
    return replies.sort((a, b) => a.instance.localeCompare(b.instance));
  }

  private async currentInfo(): Promise<PolicyVersionInfo | undefined> {
    const v = await this.deps.store.currentVersion();
    return v === 0 ? undefined : this.deps.store.info(v);
  }

  private announce(result: ApplyResult, author: string): ApplyOutcome {
    if (!result.created) return { outcome: 'unchanged', info: result.info };
    announcePolicyChange(this.deps.bus, { version: result.version, sha256: result.info.sha256 });
    this.deps.log.info({ policyVersion: result.version, author }, 'policy version stored and announced');
    this.event(
      'applied',
      'POLICY_APPLIED',
      `version ${result.version} is current`,
      author,
      {},
      result.version,
    );
    return { outcome: 'applied', info: result.info };
  }

  private event(
    action: string,
    tag: string,
    reason: string,
    user: string,
    details: Record<string, unknown>,
    policyVersion?: number,
  ) {
    try {
      publishEvent(this.deps.bus, {
        engine: 'control',
        action,
        tag,
        reason,
        service: 'control',
        ...(user ? { user } : {}),
        ...(policyVersion ? { policyVersion } : {}),
        details,
      });
    } catch (err) {
      this.deps.log.warn({ err }, 'could not publish event');
    }
  }
}
