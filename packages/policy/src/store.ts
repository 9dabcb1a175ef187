import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import diffObjects from 'microdiff';
import type { Policy } from './schema/policy.js';
import { canonicalPolicyJson, PolicyValidationError, validatePolicy } from './validate.js';

/** What is known about one stored policy version, without the document. */
export interface PolicyVersionInfo {
  version: number;
  sha256: string;
  createdAt: string;
  author: string;
  comment: string;
  /** Set when this version was made by rolling back to an older one. */
  rolledBackFrom?: number;
}

export interface PolicyRecord extends PolicyVersionInfo {
  policy: Policy;
  /** The text as the operator wrote it (YAML with comments), when it came from a file. */
  source?: string;
}

export interface ApplyMeta {
  author: string;
  comment?: string;
  source?: string;
}

export interface ApplyResult {
  /** The version now current. */
  version: number;
  /** False when the policy equals the current one and no version was created. */
  created: boolean;
  info: PolicyVersionInfo;
}

export interface PolicyChange {
  /** e.g. `securityRules[2].action` */
  path: string;
  kind: 'added' | 'removed' | 'changed';
  before?: unknown;
  after?: unknown;
}

export class PolicyNotFoundError extends Error {
  override name = 'PolicyNotFoundError';
  constructor(readonly version: number) {
    super(version === 0 ? 'no policy has been applied yet' : `policy version ${version} does not exist`);
  }
}

// Allocating the version, storing it and moving `current` happen in one atomic script, so
// concurrent applies each get their own version and none is lost or overwritten.
const APPLY_SCRIPT = `
local prefix = ARGV[1]
local cur = redis.call('GET', prefix .. 'current')
if cur and redis.call('HGET', prefix .. 'v:' .. cur, 'sha256') == ARGV[2] then
  return {tonumber(cur), 0}
end
local v = redis.call('INCR', prefix .. 'seq')
redis.call('HSET', prefix .. 'v:' .. v, 'version', v, 'sha256', ARGV[2], 'createdAt', ARGV[3],
  'author', ARGV[4], 'comment', ARGV[5], 'document', ARGV[6], 'source', ARGV[7], 'rolledBackFrom', ARGV[8])
redis.call('ZADD', prefix .. 'history', v, v)
redis.call('SET', prefix .. 'current', v)
return {v, 1}
`;

const INFO_FIELDS = ['version', 'sha256', 'createdAt', 'author', 'comment', 'rolledBackFrom'] as const;

function toInfo(fields: (string | null)[]): PolicyVersionInfo {
  const [version, sha256, createdAt, author, comment, rolledBackFrom] = fields;
  return {
    version: Number(version),
    sha256: sha256 ?? '',
    createdAt: createdAt ?? '',
    author: author ?? '',
    comment: comment ?? '',
    ...(rolledBackFrom ? { rolledBackFrom: Number(rolledBackFrom) } : {}),
  };
}

const formatPath = (path: (string | number)[]) =>
  path.reduce<string>((acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p), '');

/** The versioned policy store in Redis (keys `moat:policy:*`). Validation happens before it. */
export class PolicyStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: Redis,
    opts: { prefix?: string } = {},
  ) {
    this.prefix = opts.prefix ?? 'moat:policy:';
  }

  /**
   * Stores `policy` as a new current version unless it equals the current one. An invalid
   * policy throws PolicyValidationError and nothing is stored.
   */
  async apply(policy: Policy, meta: ApplyMeta, rolledBackFrom?: number): Promise<ApplyResult> {
    const checked = validatePolicy(policy);
    if (!checked.ok) throw new PolicyValidationError(checked.violations);
    const document = canonicalPolicyJson(checked.policy);
    const sha256 = createHash('sha256').update(document).digest('hex');
    const [version, created] = (await this.redis.eval(
      APPLY_SCRIPT,
      0,
      this.prefix,
      sha256,
      new Date().toISOString(),
      meta.author,
      meta.comment ?? '',
      document,
      meta.source ?? '',
      rolledBackFrom === undefined ? '' : String(rolledBackFrom),
    )) as [number, number];
    const info = await this.info(version);
    if (!info) throw new PolicyNotFoundError(version);
    return { version, created: created === 1, info };
  }

  /** The current version number; 0 when nothing was ever applied. */
  async currentVersion(): Promise<number> {
    return Number((await this.redis.get(`${this.prefix}current`)) ?? 0);
  }

  async info(version: number): Promise<PolicyVersionInfo | undefined> {
    const fields = await this.redis.hmget(`${this.prefix}v:${version}`, ...INFO_FIELDS);
    return fields[0] === null ? undefined : toInfo(fields);
  }

  /** A version with its document; `0` means the current one. Throws PolicyNotFoundError. */
  async get(version = 0): Promise<PolicyRecord> {
    const v = version === 0 ? await this.currentVersion() : version;
    const fields = await this.redis.hmget(`${this.prefix}v:${v}`, ...INFO_FIELDS, 'document', 'source');
    if (v === 0 || fields[0] === null) throw new PolicyNotFoundError(version);
    // Stored documents were validated on the way in; validating again guards against a schema
    // change between versions of Moat and against anything else writing the key.
    const checked = validatePolicy(JSON.parse(fields[6] ?? 'null'));
    if (!checked.ok) throw new PolicyValidationError(checked.violations);
    const source = fields[7];
    return { ...toInfo(fields.slice(0, 6)), policy: checked.policy, ...(source ? { source } : {}) };
  }

  /** Versions, newest first. */
  async history(limit = 50): Promise<PolicyVersionInfo[]> {
    const versions = await this.redis.zrevrange(`${this.prefix}history`, 0, limit - 1);
    const pipeline = this.redis.pipeline();
    for (const v of versions) pipeline.hmget(`${this.prefix}v:${v}`, ...INFO_FIELDS);
    const rows = (await pipeline.exec()) ?? [];
    return rows.flatMap(([err, fields]) => (err ? [] : [toInfo(fields as (string | null)[])]));
  }

  /** What changed from version `from` to version `to`, field by field. */
  async diff(from: number, to: number): Promise<PolicyChange[]> {
    const [a, b] = await Promise.all([this.get(from), this.get(to)]);
    return diffPolicies(a.policy, b.policy);
  }

  /** Makes the content of an older version current again, as a new version. */
  async rollback(version: number, meta: ApplyMeta): Promise<ApplyResult> {
    const target = await this.get(version);
    return this.apply(
      target.policy,
      {
        ...meta,
        comment: meta.comment || `rollback to version ${version}`,
        ...(target.source ? { source: target.source } : {}),
      },
      version,
    );
  }
}

export function diffPolicies(a: Policy, b: Policy): PolicyChange[] {
  return diffObjects(a as Record<string, unknown>, b as Record<string, unknown>).map((d) => {
    const path = formatPath(d.path);
    if (d.type === 'CREATE') return { path, kind: 'added', after: d.value };
    if (d.type === 'REMOVE') return { path, kind: 'removed', before: d.oldValue };
    return { path, kind: 'changed', before: d.oldValue, after: d.value };
  });
}
