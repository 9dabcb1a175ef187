/**
 * The proxy's side of scanning: hash the content, answer from the verdict cache when it can, else
 * queue a job (content inline, or through the object store when large) and wait for the verdict
 * with a deadline. It never decides what a missing verdict means: a timeout or an unreachable queue
 * comes back as result "error", and the caller applies the profile's fail mode.
 */
import { createHash, randomUUID } from 'node:crypto';
import { injectIntoNatsHeaders } from '@moat/telemetry';
import { type JetStreamClient, jetstream } from '@nats-io/jetstream';
import { type ObjectStore, Objm, setSha256Backend } from '@nats-io/obj';
import { createInbox, headers, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { context, type Span, trace } from '@opentelemetry/api';
import { type CacheRedis, VerdictCache } from './cache.js';
import {
  DEFAULT_INLINE_LIMIT,
  SCAN_BODIES_BUCKET,
  SCAN_BODIES_TTL_MS,
  SCAN_HEADER,
  type ScanDirection,
  type ScanVerdict,
  scanVerdictSchema,
} from './contract.js';
import { SCAN_SUBJECT } from './queue.js';

export interface ScanRequest {
  content: Buffer;
  /** Give up (result "error") after this long. */
  timeoutMs: number;
  direction: ScanDirection;
  /** Redacted URL, for the worker's events and logs. */
  url?: string;
  /** The span the scan's own span belongs under (the request's). */
  parent?: Span;
}

export interface ScanClientOptions {
  nc: NatsConnection;
  redis: CacheRedis;
  /** Content above this many bytes goes through the object store (default 512 KiB). */
  inlineLimit?: number;
}

/** Object chunks: fewer, larger messages than the library's 128 KiB (under the 1 MiB max_payload). */
const BODY_CHUNK_BYTES = 512 * 1024;

interface Waiter {
  resolve(verdict: ScanVerdict): void;
}

const errorVerdict = (id: string, reason: string, startedAt: number): ScanVerdict => ({
  id,
  result: 'error',
  reason,
  errorKind: 'unavailable',
  cached: false,
  worker: 'none',
  scanMs: performance.now() - startedAt,
});

export class ScanClient {
  readonly cache: VerdictCache;
  private readonly js: JetStreamClient;
  private readonly inbox = createInbox();
  private readonly waiting = new Map<string, Waiter>();
  private readonly sub: Subscription;
  private readonly inlineLimit: number;

  constructor(private readonly opts: ScanClientOptions) {
    this.js = jetstream(opts.nc);
    this.cache = new VerdictCache(opts.redis);
    this.inlineLimit = opts.inlineLimit ?? DEFAULT_INLINE_LIMIT;
    // one subscription for every verdict this proxy waits for: `<inbox>.<job id>`
    this.sub = opts.nc.subscribe(`${this.inbox}.*`, {
      callback: (err, msg) => {
        if (err) return;
        const id = msg.subject.slice(this.inbox.length + 1);
        const waiter = this.waiting.get(id);
        if (!waiter) return; // the verdict came after the deadline
        let verdict: ScanVerdict;
        try {
          verdict = scanVerdictSchema.parse(msg.json());
        } catch (e) {
          verdict = errorVerdict(id, `a malformed verdict arrived: ${(e as Error).message}`, 0);
        }
        waiter.resolve(verdict);
      },
    });
  }

  /** How many scans this client is waiting for. */
  get pending(): number {
    return this.waiting.size;
  }

  async scan(req: ScanRequest): Promise<ScanVerdict> {
    const startedAt = performance.now();
    const id = randomUUID();
    const sha256 = createHash('sha256').update(req.content).digest('hex');
    const span = trace
      .getTracer('moat')
      .startSpan(
        'av.scan',
        { attributes: { 'moat.content.sha256': sha256, 'moat.content.bytes': req.content.length } },
        req.parent ? trace.setSpan(context.active(), req.parent) : undefined,
      );
    let verdict: ScanVerdict;
    // the profile's deadline bounds everything, a stalled Redis or object-store upload included
    const deadline = Date.now() + req.timeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<ScanVerdict>((resolve) => {
      timer = setTimeout(
        () =>
          resolve(
            errorVerdict(
              id,
              `no verdict within ${req.timeoutMs} ms: the scanners are unavailable or overloaded`,
              startedAt,
            ),
          ),
        req.timeoutMs,
      );
    });
    try {
      verdict = await Promise.race([this.reach(req, id, sha256, deadline, startedAt, span), late]);
    } catch (err) {
      verdict = errorVerdict(id, `the scan could not be queued: ${(err as Error).message}`, startedAt);
    } finally {
      clearTimeout(timer);
      this.waiting.delete(id); // a verdict arriving later finds nobody waiting
    }
    span.setAttributes({
      'moat.av.result': verdict.result,
      'moat.av.cached': verdict.cached,
      'moat.av.worker': verdict.worker,
      ...(verdict.signature ? { 'moat.signature': verdict.signature } : {}),
      ...(verdict.signatureVersion ? { 'moat.av.signature_version': verdict.signatureVersion } : {}),
      ...(verdict.reason ? { 'moat.reason': verdict.reason } : {}),
    });
    span.end();
    return verdict;
  }

  private async reach(
    req: ScanRequest,
    id: string,
    sha256: string,
    deadline: number,
    startedAt: number,
    span: Span,
  ): Promise<ScanVerdict> {
    // a repeated download: answered here, nothing sent anywhere (a Redis failure just means a scan)
    const version = await this.cache.currentVersion().catch(() => undefined);
    const hit = version ? await this.cache.get(version, sha256).catch(() => undefined) : undefined;
    if (hit && version) {
      return {
        id,
        result: hit.result,
        ...(hit.signature ? { signature: hit.signature } : {}),
        cached: true,
        signatureVersion: version,
        worker: 'proxy',
        scanMs: performance.now() - startedAt,
      };
    }
    const h = headers();
    h.set(SCAN_HEADER.id, id);
    h.set(SCAN_HEADER.replyTo, `${this.inbox}.${id}`);
    h.set(SCAN_HEADER.sha256, sha256);
    h.set(SCAN_HEADER.size, String(req.content.length));
    h.set(SCAN_HEADER.deadline, String(deadline));
    h.set(SCAN_HEADER.direction, req.direction);
    if (req.url) h.set(SCAN_HEADER.url, req.url.slice(0, 2048));
    // the worker need not look again under the version just missed
    if (version) h.set(SCAN_HEADER.cacheMissed, version);
    injectIntoNatsHeaders(h, trace.setSpan(context.active(), span));

    const inline = req.content.length <= this.inlineLimit;
    const answer = new Promise<ScanVerdict>((resolve) => this.waiting.set(id, { resolve }));
    try {
      if (!inline) {
        const store = await openBodiesStore(this.opts.nc);
        await store.putBlob({ name: id, options: { max_chunk_size: BODY_CHUNK_BYTES } }, req.content);
        h.set(SCAN_HEADER.object, id);
      }
      await this.js.publish(SCAN_SUBJECT, inline ? req.content : undefined, {
        headers: h,
        msgID: id,
        timeout: Math.max(100, deadline - Date.now()),
      });
      return await answer;
    } finally {
      if (!inline) void this.deleteBody(id);
    }
  }

  private async deleteBody(id: string): Promise<void> {
    try {
      await (await openBodiesStore(this.opts.nc)).delete(id);
    } catch {
      // the bucket's TTL removes it anyway
    }
  }

  close(): void {
    this.sub.unsubscribe();
    for (const [id, waiter] of this.waiting)
      waiter.resolve(errorVerdict(id, 'the proxy is shutting down', 0));
  }
}

const bodyStores = new WeakMap<NatsConnection, Promise<ObjectStore>>();

/**
 * The object store for large content, opened (created if need be) once per connection; entries
 * expire after SCAN_BODIES_TTL_MS. A failed open is retried on the next call.
 */
export function openBodiesStore(nc: NatsConnection): Promise<ObjectStore> {
  let store = bodyStores.get(nc);
  if (!store) {
    // the object store checks every object's SHA-256 on put and get: node:crypto, not the library's
    // pure-JS default (26× faster; it was 60% of the proxy's and the workers' CPU on large bodies)
    setSha256Backend('native');
    store = new Objm(nc).create(SCAN_BODIES_BUCKET, {
      description: 'Moat: content waiting for an antivirus verdict',
      ttl: SCAN_BODIES_TTL_MS * 1e6,
    });
    store.catch(() => bodyStores.delete(nc));
    bodyStores.set(nc, store);
  }
  return store;
}
