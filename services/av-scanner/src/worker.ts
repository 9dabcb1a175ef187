/**
 * The scan loop: `concurrency` slots each pull one job at a time from the shared consumer (no job
 * waits in this process while its ack timer runs), answer it from the cache or by streaming it to
 * clamd, publish the verdict, and only then ack. A worker that dies mid-scan leaves its job unacked:
 * JetStream hands it to another worker after ack_wait. While clamd is down the worker takes no jobs,
 * and gives back (nak) the one in hand, so a healthy worker scans it.
 */
import { createHash } from 'node:crypto';
import { ClamdError, type ScanOutcome } from '@moat/clamav';
import type { Logger } from '@moat/log';
import {
  type CachedVerdict,
  openBodiesStore,
  readJobMeta,
  SCAN_CONSUMER,
  SCAN_STREAM,
  ScanJobError,
  type ScanJobMeta,
  type ScanVerdict,
  type VerdictCache,
} from '@moat/scan';
import { attr, contextFromNatsHeaders } from '@moat/telemetry';
import type { Consumer, JsMsg } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type Span, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import type { ClamdEngine } from './engine.js';
import type { AvMetrics } from './metrics.js';

export interface WorkerOptions {
  nc: NatsConnection;
  engine: ClamdEngine;
  cache: VerdictCache;
  metrics: AvMetrics;
  log: Logger;
  instance: string;
  concurrency: number;
  scanTimeoutMs: number;
  /** Every verdict is also an event (events.av.clean|infected|error). */
  onVerdict: (meta: ScanJobMeta, verdict: ScanVerdict, traceId: string) => void;
}

/** A job still being worked on tells JetStream so this often (well inside the consumer's ack_wait). */
const HEARTBEAT_MS = 2_000;
/** How long one pull waits for a job before asking again (also how fast a stop is noticed). */
const PULL_EXPIRES_MS = 2_000;

/** clamd itself failed (not the content): another worker should have the job. */
const isClamdDown = (err: unknown) =>
  err instanceof ClamdError &&
  (err.kind === 'unreachable' ||
    err.kind === 'timeout' ||
    err.kind === 'protocol' ||
    // an engine fault, not the content's
    (err.kind === 'clamd' && /memory|allocate/i.test(err.message)));

export class ScanWorker {
  private stopping = false;
  private loops: Promise<void>[] = [];
  inFlight = 0;

  constructor(private readonly opts: WorkerOptions) {}

  async start(): Promise<void> {
    const consumer = await jetstream(this.opts.nc).consumers.get(SCAN_STREAM, SCAN_CONSUMER);
    this.loops = Array.from({ length: this.opts.concurrency }, () => this.slot(consumer));
  }

  /** Stops pulling, lets the scans in hand finish (their verdicts published and acked). */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  private async slot(consumer: Consumer): Promise<void> {
    const { engine, log } = this.opts;
    while (!this.stopping) {
      // a worker whose clamd is down or failed the EICAR self-test takes no jobs: others will
      if (!engine.canScan) {
        const lastTest = engine.selfTest?.at.getTime() ?? 0;
        if ((await engine.probe()) && !engine.selfTest?.passed && Date.now() - lastTest > 5_000)
          await engine.runSelfTest();
        if (!engine.canScan) {
          await sleep(500);
          continue;
        }
      }
      let msg: JsMsg | null;
      try {
        msg = await consumer.next({ expires: PULL_EXPIRES_MS });
      } catch (err) {
        if (this.stopping || this.opts.nc.isClosed()) return;
        log.warn({ err: (err as Error).message }, 'pulling scan jobs failed; retrying');
        await sleep(1_000);
        continue;
      }
      if (!msg) continue;
      this.inFlight++;
      try {
        await this.handle(msg);
      } catch (err) {
        log.error({ err }, 'scan job handling failed');
      } finally {
        this.inFlight--;
      }
    }
  }

  private async handle(msg: JsMsg): Promise<void> {
    const { log, metrics } = this.opts;
    let meta: ScanJobMeta;
    try {
      meta = readJobMeta(msg.headers);
    } catch (err) {
      // a malformed job can never succeed: terminate it rather than let it bounce between workers
      metrics.jobs.inc({ outcome: 'malformed' });
      log.warn({ err: (err as ScanJobError).message, seq: msg.seq }, 'dropped a malformed scan job');
      msg.term((err as Error).message);
      return;
    }
    if (Date.now() > meta.deadline) {
      // nobody waits for this verdict any more: the proxy has already applied its fail mode
      metrics.jobs.inc({ outcome: 'expired' });
      log.warn(
        { id: meta.id, url: meta.url, redelivered: msg.info.deliveryCount > 1 },
        'scan job expired before it was scanned',
      );
      msg.ack();
      return;
    }
    const parent = contextFromNatsHeaders(msg.headers);
    const span = trace.getTracer('moat').startSpan(
      'av-scanner.scan',
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [attr.subject]: msg.subject,
          [attr.contentSha256]: meta.sha256,
          [attr.contentBytes]: meta.size,
          'messaging.message.id': meta.id,
          'messaging.delivery_count': msg.info.deliveryCount,
        },
      },
      parent,
    );
    // keeps the job while it is worth finishing; past its deadline nobody waits, so a stuck scan
    // stops holding it (redelivered, then dropped as expired)
    const heartbeat = setInterval(() => {
      if (Date.now() > meta.deadline) return;
      try {
        msg.working();
      } catch {
        // the connection is closing: the job is redelivered if it is not acked
      }
    }, HEARTBEAT_MS);
    try {
      let toCache: { version: string; verdict: CachedVerdict } | undefined;
      const verdict = await this.verdictFor(msg, meta, span, (version, cached) => {
        toCache = { version, verdict: cached };
      });
      if (!verdict) {
        // clamd went away mid-job: give the job back at once for a healthy worker
        metrics.jobs.inc({ outcome: 'returned' });
        msg.nak();
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: 'clamd unavailable; job returned to the queue',
        });
        return;
      }
      span.setAttributes({
        [attr.avResult]: verdict.result,
        [attr.avCached]: verdict.cached,
        [attr.avWorker]: verdict.worker,
        ...(verdict.signatureVersion ? { [attr.avSignatureVersion]: verdict.signatureVersion } : {}),
        ...(verdict.signature ? { [attr.signature]: verdict.signature } : {}),
        ...(verdict.reason ? { [attr.reason]: verdict.reason } : {}),
      });
      if (verdict.result !== 'clean')
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: verdict.signature ?? verdict.reason ?? verdict.result,
        });
      // cached before the verdict goes out: the proxy's next request for the same file finds it
      if (toCache) {
        const { version, verdict: cached } = toCache;
        await this.opts.cache
          .put(version, meta.sha256, cached)
          .catch((err: unknown) =>
            log.warn({ err: (err as Error).message }, 'could not store a verdict in the cache'),
          );
      }
      this.opts.nc.publish(meta.replyTo, JSON.stringify(verdict));
      // the verdict must have reached the server before the job is acked
      await this.opts.nc.flush();
      msg.ack();
      metrics.jobs.inc({ outcome: verdict.result });
      metrics.scans.inc({ result: verdict.result, cached: String(verdict.cached) });
      if (!verdict.cached) {
        metrics.scanSeconds.observe(verdict.scanMs / 1000);
        metrics.scannedBytes.inc(meta.size);
      }
      this.opts.onVerdict(meta, verdict, span.spanContext().traceId);
    } finally {
      clearInterval(heartbeat);
      span.end();
    }
  }

  /** The verdict, or undefined when clamd itself failed (the job then goes back to the queue). */
  private async verdictFor(
    msg: JsMsg,
    meta: ScanJobMeta,
    span: Span,
    remember: (version: string, verdict: CachedVerdict) => void,
  ): Promise<ScanVerdict | undefined> {
    const { engine, cache, instance } = this.opts;
    const started = performance.now();
    const database = engine.database;
    const cacheable = engine.cacheable && database !== undefined;
    const base = {
      id: meta.id,
      worker: instance,
      ...(database ? { signatureVersion: database.version } : {}),
    };
    if (cacheable && meta.cacheMissed !== database.version) {
      const hit = await cache.get(database.version, meta.sha256).catch(() => undefined);
      if (hit) {
        span.addEvent('verdict cache hit');
        return { ...base, ...hit, cached: true, scanMs: performance.now() - started };
      }
    }
    let outcome: ScanOutcome;
    try {
      outcome = await this.scanContent(msg, meta);
      engine.markUp();
    } catch (err) {
      // a timeout with clamd still answering is the content's doing (a deep archive, a past
      // deadline): a verdict of its own, not a reason to hand the job to the next worker
      if (
        isClamdDown(err) &&
        !(err instanceof ClamdError && err.kind === 'timeout' && (await engine.probe()))
      ) {
        engine.markDown((err as Error).message);
        return undefined;
      }
      const reason = (err as Error).message;
      this.opts.log.warn({ id: meta.id, url: meta.url, reason }, 'no verdict for a scan job');
      return {
        ...base,
        result: 'error',
        reason,
        errorKind: 'unscannable',
        cached: false,
        scanMs: performance.now() - started,
      };
    }
    const verdict: ScanVerdict = {
      ...base,
      ...(outcome.status === 'infected'
        ? { result: 'infected', signature: outcome.signature }
        : { result: 'clean' }),
      cached: false,
      scanMs: performance.now() - started,
    };
    // cache only if the database did not change while scanning
    if (cacheable && engine.cacheable && engine.database?.version === database.version) {
      remember(
        database.version,
        outcome.status === 'infected'
          ? { result: 'infected', signature: outcome.signature }
          : { result: 'clean' },
      );
    }
    return verdict;
  }

  /**
   * Streams the job's content to clamd, hashing it on the way: content that does not match the
   * job's hash (a truncated object, a mixed-up job) is an error, never a verdict about other bytes.
   */
  private async scanContent(msg: JsMsg, meta: ScanJobMeta): Promise<ScanOutcome> {
    const hash = createHash('sha256');
    let size = 0;
    let source: AsyncIterable<Uint8Array>;
    if (meta.object) {
      const store = await openBodiesStore(this.opts.nc);
      const object = await store.get(meta.object);
      if (!object)
        throw new ScanJobError(`the content (object ${meta.object}) is gone from the object store`);
      source = streamChunks(object.data);
    } else {
      source = (async function* () {
        yield msg.data;
      })();
    }
    const counted = (async function* () {
      for await (const chunk of source) {
        hash.update(chunk);
        size += chunk.length;
        yield chunk;
      }
    })();
    const timeoutMs = Math.max(100, Math.min(this.opts.scanTimeoutMs, meta.deadline - Date.now()));
    const outcome = await this.opts.engine.clamd.scan(counted, { timeoutMs });
    if (size !== meta.size || hash.digest('hex') !== meta.sha256) {
      throw new ScanJobError(`the content received (${size} bytes) does not match the job's size or SHA-256`);
    }
    return outcome;
  }
}

async function* streamChunks(stream: ReadableStream<Uint8Array>): AsyncIterable<Uint8Array> {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // a scan that stopped early (deadline, clamd gone) stops the object's delivery too
    await reader.cancel().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
