/**
 * Name resolution with a cache. getaddrinfo (dns.lookup) honours /etc/hosts and nsswitch as every
 * other program on the host does; it reports no TTL, so answers are kept for a fixed time, failures
 * for a shorter one, and concurrent lookups of one name share a single query.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export class DnsError extends Error {
  override name = 'DnsError';
  constructor(
    readonly host: string,
    readonly code: string,
  ) {
    super(
      code === 'ENOTFOUND'
        ? `the name ${host} does not exist (DNS)`
        : `cannot resolve ${host} (${code}); check the gateway's DNS settings`,
    );
  }
}

interface Entry {
  expires: number;
  addresses?: string[];
  error?: DnsError;
}

type Lookup = (host: string) => Promise<string[]>;

const systemLookup: Lookup = async (host) =>
  (await lookup(host, { all: true, order: 'ipv4first' })).map((a) => a.address);

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<string[]>>();

  constructor(
    private readonly ttlMs: number,
    private readonly negativeTtlMs: number,
    private readonly resolve: Lookup = systemLookup,
    private readonly maxEntries = 50_000,
  ) {}

  /**
   * The answer without waiting, when there is one: IP literals and fresh cache entries (a cached
   * failure comes back as its DnsError). Most requests take this path and never await.
   */
  cached(host: string): string[] | DnsError | undefined {
    if (isIP(host)) return [host];
    const entry = this.entries.get(host);
    if (!entry || entry.expires <= Date.now()) return undefined;
    return entry.error ?? entry.addresses ?? [];
  }

  /** Addresses of `host` (an IP literal resolves to itself). Throws DnsError. */
  async addresses(host: string): Promise<string[]> {
    const known = this.cached(host);
    if (known instanceof DnsError) throw known;
    if (known) return known;
    const pending = this.inflight.get(host);
    if (pending) return pending;
    const query = this.query(host).finally(() => this.inflight.delete(host));
    this.inflight.set(host, query);
    return query;
  }

  private async query(host: string): Promise<string[]> {
    try {
      const addresses = await this.resolve(host);
      if (addresses.length === 0) throw Object.assign(new Error('no addresses'), { code: 'ENOTFOUND' });
      this.store(host, { expires: Date.now() + this.ttlMs, addresses });
      return addresses;
    } catch (err) {
      const error = new DnsError(host, (err as NodeJS.ErrnoException).code ?? 'EAI_FAIL');
      this.store(host, { expires: Date.now() + this.negativeTtlMs, error });
      throw error;
    }
  }

  private store(host: string, entry: Entry): void {
    if (this.entries.size >= this.maxEntries) {
      // drop the oldest insertions: Map iterates in insertion order
      for (const key of [...this.entries.keys()].slice(0, this.maxEntries / 10)) this.entries.delete(key);
    }
    this.entries.set(host, entry);
  }
}
