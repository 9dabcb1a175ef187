/**
 * Issued leaves, kept so a repeat visit (or a restarted replica) presents the same certificate
 * rather than minting again: in memory, and in Redis for every replica sharing the CA. In Redis the
 * leaf's private key is encrypted (AES-256-GCM) with a key derived from the CA's private key, so a
 * Redis dump alone reveals no usable key, and a replica with another CA cannot use the entries.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { InterceptionCa } from './ca.js';
import { type Leaf, type LeafRequest, leafNames } from './issuer.js';

export interface CachedLeaf extends Leaf {
  /** Where this answer came from. */
  source: 'memory' | 'redis' | 'issued';
}

interface StoredLeaf {
  certificatePem: string;
  /** base64 of iv (12) ‖ tag (16) ‖ ciphertext of the private key PEM. */
  key: string;
  notBefore: string;
  notAfter: string;
  serial: string;
}

export interface LeafCacheOptions {
  ca: InterceptionCa;
  redis?: Redis;
  /** Leaves are renewed once less than this is left of them (default 12 h). */
  renewBeforeMs?: number;
  /** Most leaves kept in memory (default 10,000; the oldest go first). */
  memoryEntries?: number;
}

const PREFIX = 'moat:tls:leaf:';

export class LeafCache {
  private readonly memory = new Map<string, Leaf>();
  private readonly renewBeforeMs: number;
  private readonly memoryEntries: number;
  /** Distinguishes entries of one CA from another's in a shared Redis. */
  private readonly caId: string;

  constructor(private readonly options: LeafCacheOptions) {
    this.renewBeforeMs = options.renewBeforeMs ?? 12 * 3600 * 1000;
    this.memoryEntries = options.memoryEntries ?? 10_000;
    this.caId = createHash('sha256').update(options.ca.certificatePem).digest('hex').slice(0, 16);
  }

  /** The cache key of a request: the CA and the sorted, normalised names. */
  keyOf(request: LeafRequest): string {
    const { dns, ip } = leafNames(request);
    const names = [dns[0], ...[...dns.slice(1), ...ip].sort()].join(',');
    return `${this.caId}:${createHash('sha256').update(names).digest('hex')}`;
  }

  /** A cached leaf that is still fresh enough, or one minted by `issue` (and then cached). */
  async get(request: LeafRequest, issue: () => Promise<Leaf>): Promise<CachedLeaf> {
    const key = this.keyOf(request);
    const inMemory = this.memory.get(key);
    if (inMemory && this.fresh(inMemory)) return { ...inMemory, source: 'memory' };
    const stored = await this.fromRedis(key);
    if (stored && this.fresh(stored)) {
      this.remember(key, stored);
      return { ...stored, source: 'redis' };
    }
    const leaf = await issue();
    this.remember(key, leaf);
    await this.toRedis(key, leaf);
    return { ...leaf, source: 'issued' };
  }

  private fresh(leaf: Leaf): boolean {
    return leaf.notAfter.getTime() - Date.now() > this.renewBeforeMs;
  }

  private remember(key: string, leaf: Leaf): void {
    this.memory.delete(key);
    this.memory.set(key, leaf);
    if (this.memory.size > this.memoryEntries) {
      const oldest = this.memory.keys().next().value;
      if (oldest !== undefined) this.memory.delete(oldest);
    }
  }

  private async fromRedis(key: string): Promise<Leaf | undefined> {
    const redis = this.options.redis;
    if (!redis) return undefined;
    const raw = await redis.get(PREFIX + key).catch(() => null);
    if (!raw) return undefined;
    try {
      const stored = JSON.parse(raw) as StoredLeaf;
      return {
        certificatePem: stored.certificatePem,
        privateKeyPem: this.decrypt(stored.key),
        notBefore: new Date(stored.notBefore),
        notAfter: new Date(stored.notAfter),
        serial: stored.serial,
      };
    } catch {
      // tampered, truncated or another CA's: mint a new one
      return undefined;
    }
  }

  private async toRedis(key: string, leaf: Leaf): Promise<void> {
    const redis = this.options.redis;
    if (!redis) return;
    const stored: StoredLeaf = {
      certificatePem: leaf.certificatePem,
      key: this.encrypt(leaf.privateKeyPem),
      notBefore: leaf.notBefore.toISOString(),
      notAfter: leaf.notAfter.toISOString(),
      serial: leaf.serial,
    };
    const ttlMs = leaf.notAfter.getTime() - Date.now() - this.renewBeforeMs;
    if (ttlMs <= 0) return;
    // a Redis outage costs a mint per replica, never a failed handshake
    await redis.set(PREFIX + key, JSON.stringify(stored), 'PX', ttlMs).catch(() => undefined);
  }

  private encrypt(plain: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.options.ca.cacheSecret, iv);
    const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64');
  }

  private decrypt(sealed: string): string {
    const bytes = Buffer.from(sealed, 'base64');
    const decipher = createDecipheriv('aes-256-gcm', this.options.ca.cacheSecret, bytes.subarray(0, 12));
    decipher.setAuthTag(bytes.subarray(12, 28));
    return Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]).toString('utf8');
  }
}
