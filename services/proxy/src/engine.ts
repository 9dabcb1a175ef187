/**
 * The policy the proxy enforces, swapped atomically: a new version is compiled (and its URL lists
 * built) on the side, then replaces the old one for new requests; requests in flight finish under
 * the version they started with. A version that fails to compile leaves the running one in place.
 */
import type { Logger } from '@moat/log';
import type { PolicyRecord } from '@moat/policy';
import { type UrlCategorizer, UrlListManager } from '@moat/urlfilter';
import type { ProxyMetrics } from './observe/metrics.js';
import { compileProxyPolicy, type ProxyPolicy } from './policy/compile.js';

export class ProxyEngine {
  private compiled: ProxyPolicy | undefined;
  private readonly lists: UrlListManager;
  private listTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly log: Logger,
    private readonly metrics: ProxyMetrics,
  ) {
    this.lists = new UrlListManager({
      onReload: (stats) => {
        metrics.urlListEntries.set(stats.entries);
        metrics.urlListBytes.set(stats.bytes);
        metrics.urlListReloads.inc({ result: 'ok' });
        log.info(
          {
            entries: stats.entries,
            bytes: stats.bytes,
            buildMs: stats.buildMs,
            skippedLines: stats.skippedLines,
          },
          'URL lists loaded',
        );
      },
    });
  }

  /** Compiles and installs a policy version; throws (keeping the current one) when it cannot. */
  async apply(record: PolicyRecord): Promise<void> {
    const compiled = await compileProxyPolicy(record.policy, record.version);
    try {
      await this.lists.update(compiled.categorySources);
    } catch (err) {
      this.metrics.urlListReloads.inc({ result: 'error' });
      throw new Error(`URL lists of policy v${record.version}: ${(err as Error).message}`, { cause: err });
    }
    this.compiled = compiled;
  }

  policy(): ProxyPolicy | undefined {
    return this.compiled;
  }

  categorizer(): UrlCategorizer {
    return this.lists.categorizer;
  }

  /** Rebuilds the URL tables when a list file changed (on a timer, and on SIGHUP). */
  async reloadLists(reason: string): Promise<void> {
    try {
      if (await this.lists.checkForChanges())
        this.log.info({ reason }, 'URL lists changed on disk and were reloaded');
    } catch (err) {
      this.metrics.urlListReloads.inc({ result: 'error' });
      this.log.error(
        { err: (err as Error).message, reason },
        'URL list reload failed; the previous lists stay in use',
      );
    }
  }

  watchLists(intervalMs: number): void {
    this.listTimer = setInterval(() => void this.reloadLists('timer'), intervalMs);
    this.listTimer.unref();
  }

  stop(): void {
    if (this.listTimer) clearInterval(this.listTimer);
  }

  details(): Record<string, unknown> {
    const stats = this.lists.stats;
    return {
      policyVersion: this.compiled?.version ?? 0,
      rules: this.compiled?.rules.length ?? 0,
      urlLists: {
        entries: stats.entries,
        bytes: stats.bytes,
        buildMs: stats.buildMs,
        error: this.lists.lastError?.message,
      },
    };
  }
}
