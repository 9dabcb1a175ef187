/**
 * The verdict cache in Redis, shared by every worker and every proxy: a verdict is stored under the
 * content's SHA-256 and the signature database version, so a signature update invalidates every
 * cached verdict by construction (the old keys are simply never read again, and expire).
 *
 * Workers publish the database version they scan with (the newest build wins); the proxy reads it
 * to answer a repeated download from the cache without sending the content anywhere.
 */

/** What the cache needs from a Redis client (ioredis fits). */
export interface CacheRedis {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, mode: 'PX', ttlMs: number): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
}

export interface CachedVerdict {
  result: 'clean' | 'infected';
  signature?: string;
}

const PREFIX = 'moat:av:';
export const CURRENT_VERSION_KEY = `${PREFIX}signature-version`;
const verdictKey = (version: string, sha256: string) => `${PREFIX}verdict:${version}:${sha256}`;
/** Workers renew their announcement this often (while their signatures are fresh). */
export const ANNOUNCE_EVERY_MS = 10 * 60 * 1000;
/**
 * An announcement nobody renews ends after three missed renewals: once no worker with fresh
 * signatures is left, proxies stop answering from the cache within half an hour.
 */
const ANNOUNCEMENT_TTL_MS = 3 * ANNOUNCE_EVERY_MS;

/**
 * The announcement is "<build time in ms> <version>". A worker whose signatures were built before
 * the announced ones (one that has not picked up an update yet) must not move every proxy back to
 * the older version's verdicts, so it changes nothing; the same version (renewal, from any worker)
 * or a newer build replaces it.
 */
const ANNOUNCE_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local built, version = string.match(current, '^(%d+) (.*)$')
  if version == ARGV[2] then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
    return 1
  end
  if built and tonumber(built) > tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])
return 1
`;

const announcedVersion = (raw: string | null) => raw?.replace(/^\d+ /, '') || null;

export interface VerdictCacheOptions {
  /** How long a verdict stays (default 24 h). */
  ttlMs?: number;
  /** How long the proxy trusts the version it last read (default 2 s). */
  versionRefreshMs?: number;
}

export class VerdictCache {
  private readonly ttlMs: number;
  private readonly versionRefreshMs: number;
  private version?: { value: string | null; readAt: number };

  constructor(
    private readonly redis: CacheRedis,
    opts: VerdictCacheOptions = {},
  ) {
    this.ttlMs = opts.ttlMs ?? 24 * 3600 * 1000;
    this.versionRefreshMs = opts.versionRefreshMs ?? 2_000;
  }

  async get(version: string, sha256: string): Promise<CachedVerdict | undefined> {
    const raw = await this.redis.get(verdictKey(version, sha256));
    if (!raw) return undefined;
    try {
      const parsed = JSON.parse(raw) as CachedVerdict;
      if (parsed.result === 'clean' || (parsed.result === 'infected' && typeof parsed.signature === 'string'))
        return parsed;
    } catch {
      // a damaged entry is a miss: the content is scanned again and the entry rewritten
    }
    return undefined;
  }

  async put(version: string, sha256: string, verdict: CachedVerdict): Promise<void> {
    await this.redis.set(verdictKey(version, sha256), JSON.stringify(verdict), 'PX', this.ttlMs);
  }

  /**
   * Workers: announce the database version verdicts are now reached with, built at `builtAt` (see
   * announceBuildTime in @moat/clamav). False when a newer build is announced already, which stays.
   */
  async announceVersion(version: string, builtAt: Date): Promise<boolean> {
    const done = await this.redis.eval(
      ANNOUNCE_SCRIPT,
      1,
      CURRENT_VERSION_KEY,
      Math.max(0, Math.floor(builtAt.getTime())),
      version,
      ANNOUNCEMENT_TTL_MS,
    );
    return done === 1;
  }

  /** The newest version workers announced, re-read at most every `versionRefreshMs`. */
  async currentVersion(now = Date.now()): Promise<string | undefined> {
    if (!this.version || now - this.version.readAt >= this.versionRefreshMs) {
      this.version = { value: announcedVersion(await this.redis.get(CURRENT_VERSION_KEY)), readAt: now };
    }
    return this.version.value ?? undefined;
  }

  /** The proxy's lookup: a verdict for this content under the current version, if any. */
  async lookup(sha256: string): Promise<(CachedVerdict & { version: string }) | undefined> {
    const version = await this.currentVersion();
    if (!version) return undefined;
    const hit = await this.get(version, sha256);
    return hit ? { ...hit, version } : undefined;
  }
}
