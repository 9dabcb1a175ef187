/**
 * Where a finished transaction goes: one access-log line (JSON, or Squid's native format for
 * existing log tooling), one `events.web.*` event, and metrics.
 */
import { type Bus, publishEvent } from '@moat/bus';
import type { Logger } from '@moat/log';
import { pino } from 'pino';
import type { ProxyMetrics } from './metrics.js';
import type { Transaction } from './transaction.js';

export interface RecorderOptions {
  accessLog: string;
  accessLogFormat: 'json' | 'squid';
  eventsAllowed: boolean;
  instance: string;
  /**
   * Other processes (sibling workers) write to the same log: every write(2) then holds whole lines
   * and at most PIPE_BUF bytes, so lines never interleave on a shared stdout pipe or file.
   */
  sharedOutput?: boolean;
}

export interface Recorder {
  record(tx: Transaction): void;
  close(): Promise<void>;
}

/** Squid's native access.log line: time elapsed client code/status bytes method URL user hierarchy type. */
export function squidLine(
  tx: Transaction,
  now = Date.now(),
  elapsedMs = performance.now() - tx.startedAt,
): string {
  const code =
    tx.verdict.action === 'block' ? 'TCP_DENIED' : tx.mode === 'connect' ? 'TCP_TUNNEL' : 'TCP_MISS';
  const hierarchy = tx.server.ip ? `HIER_DIRECT/${tx.server.ip}` : 'HIER_NONE/-';
  return [
    (now / 1000).toFixed(3),
    String(Math.round(elapsedMs)).padStart(6),
    tx.client.ip,
    `${code}/${tx.status}`,
    tx.bytesOut,
    tx.method,
    tx.url,
    '-',
    hierarchy,
    tx.contentType ?? '-',
  ].join(' ');
}

const TLS_ACTIONS = { bump: 'bumped', splice: 'spliced', block: 'blocked' } as const;
const TLS_TAGS = { bump: 'SSL_PROXY_BUMP', splice: 'SSL_PROXY_SPLICE', block: 'SSL_PROXY_BLOCKED' } as const;

/** Events wait this long to be published together: one socket write for many requests. */
const EVENT_BATCH_MS = 20;
/** Access-log lines are written in blocks of this size, and at least once a second. */
const ACCESS_LOG_BLOCK = 8 * 1024;
/** Writes up to this size are atomic on a pipe (Linux PIPE_BUF). */
const PIPE_BUF = 4096;

function openAccessLog(target: string, shared: boolean) {
  if (target === 'off') return undefined;
  return pino.destination({
    dest: target === 'stdout' ? 1 : target,
    sync: false,
    mkdir: true,
    minLength: shared ? PIPE_BUF / 2 : ACCESS_LOG_BLOCK,
    ...(shared ? { maxWrite: PIPE_BUF } : {}),
  });
}

/** ISO time of the current millisecond, formatted once per millisecond rather than once per line. */
function isoClock(): () => string {
  let ms = 0;
  let iso = '';
  return () => {
    const now = Date.now();
    if (now !== ms) {
      ms = now;
      iso = new Date(now).toISOString();
    }
    return iso;
  };
}

/**
 * Metric series the recorder updates on every request, looked up once: prom-client hashes the label
 * set on every inc()/observe() otherwise.
 */
function recorderSeries(metrics: ProxyMetrics) {
  const requests = new Map<string, ReturnType<ProxyMetrics['requests']['labels']>>();
  const durations = new Map<string, ReturnType<ProxyMetrics['duration']['labels']>>();
  return {
    requests(mode: string, verdict: string, engine: string) {
      const key = `${mode} ${verdict} ${engine}`;
      let series = requests.get(key);
      if (!series) {
        series = metrics.requests.labels({ mode, verdict, engine });
        requests.set(key, series);
      }
      return series;
    },
    duration(verdict: string) {
      let series = durations.get(verdict);
      if (!series) {
        series = metrics.duration.labels({ verdict });
        durations.set(verdict, series);
      }
      return series;
    },
    bytesIn: metrics.bytes.labels({ direction: 'in' }),
    bytesOut: metrics.bytes.labels({ direction: 'out' }),
  };
}

export function createRecorder(
  opts: RecorderOptions,
  deps: { bus: Bus; log: Logger; metrics: ProxyMetrics },
): Recorder {
  const destination = openAccessLog(opts.accessLog, opts.sharedOutput ?? false);
  const { metrics, bus, log } = deps;
  const series = recorderSeries(metrics);
  const isoNow = isoClock();
  const flushTimer = destination ? setInterval(() => destination.flush(), 1000) : undefined;
  flushTimer?.unref();
  let pendingEvents: Transaction[] = [];
  let eventTimer: NodeJS.Timeout | undefined;
  const flushEvents = () => {
    eventTimer = undefined;
    const batch = pendingEvents;
    pendingEvents = [];
    for (const tx of batch) publish(tx);
  };

  const writeAccessLog = (tx: Transaction) => {
    if (!destination) return;
    if (opts.accessLogFormat === 'squid') {
      destination.write(`${squidLine(tx)}\n`);
      return;
    }
    destination.write(
      `${JSON.stringify({
        time: isoNow(),
        type: 'access',
        mode: tx.mode,
        client: tx.client.ip,
        method: tx.method,
        url: tx.url,
        status: tx.status,
        verdict: tx.verdict.action,
        engine: tx.verdict.engine,
        rule: tx.verdict.rule,
        category: tx.verdict.category,
        pattern: tx.verdict.pattern,
        bytesIn: tx.bytesIn,
        bytesOut: tx.bytesOut,
        durationMs: tx.durationMs,
        upstream: tx.server.ip,
        sni: tx.sni,
        tls: tx.tls?.action,
        av: tx.antivirus?.result,
        signature: tx.verdict.signature ?? tx.antivirus?.signature,
        tlsProblem: tx.tls?.problem ?? tx.tls?.toleratedProblem,
        contentType: tx.contentType,
        error: tx.error,
        trace_id: tx.traceId,
      })}\n`,
    );
  };

  const publish = (tx: Transaction) => {
    const blocked = tx.verdict.action === 'block';
    // a tunnel's event is TLS mediation's decision (events.tls.bumped|spliced|blocked); a request's is web filtering's
    const tunnel = tx.tls !== undefined && (tx.mode === 'connect' || tx.mode === 'tls-intercept');
    try {
      // one event per request: built without the schema check (proxy.test.ts checks them against it)
      publishEvent(
        bus,
        {
          tag: tunnel && !blocked ? TLS_TAGS[tx.tls?.action ?? 'splice'] : tx.verdict.tag,
          engine: eventEngine(tx, tunnel),
          action: blocked ? 'blocked' : tunnel ? TLS_ACTIONS[tx.tls?.action ?? 'splice'] : 'allowed',
          severity: blocked ? 'warning' : 'info',
          reason: tx.error ?? (tunnel && !blocked ? tx.tls?.reason : undefined) ?? tx.verdict.reason,
          service: 'proxy',
          instance: opts.instance,
          protocol: tx.mode === 'explicit' || tx.mode === 'transparent' ? 'http' : 'https',
          url: tx.url,
          ...(tx.verdict.rule ? { rule: tx.verdict.rule } : {}),
          ...(tx.verdict.utmPolicy ? { utmPolicy: tx.verdict.utmPolicy } : {}),
          ...(tx.verdict.profile ? { profile: tx.verdict.profile } : {}),
          ...(tx.verdict.category ? { category: tx.verdict.category } : {}),
          ...(tx.verdict.signature ? { signature: tx.verdict.signature } : {}),
          source: {
            ip: tx.client.ip,
            port: tx.client.port,
            ...(tx.client.zone ? { zone: tx.client.zone } : {}),
          },
          destination: {
            host: tx.server.host,
            port: tx.server.port,
            ...(tx.server.ip ? { ip: tx.server.ip } : {}),
            ...(tx.server.zone ? { zone: tx.server.zone } : {}),
          },
          bytes: tx.bytesIn + tx.bytesOut,
          ...(tx.durationMs !== undefined ? { durationMs: tx.durationMs } : {}),
          ...(tx.policyVersion !== undefined ? { policyVersion: tx.policyVersion } : {}),
          ...(tx.traceId ? { traceId: tx.traceId } : {}),
          details: {
            mode: tx.mode,
            method: tx.method,
            status: tx.status,
            ...(tx.verdict.pattern ? { pattern: tx.verdict.pattern } : {}),
            ...(tx.sni ? { sni: tx.sni } : {}),
            ...(tx.tls ? { tls: tx.tls } : {}),
            ...(tx.antivirus ? { antivirus: tx.antivirus } : {}),
          },
        },
        { validate: false },
      );
    } catch (err) {
      // an event that fails validation is a bug; the request itself is already answered
      log.error({ err: (err as Error).message, url: tx.url }, 'could not publish web event');
    }
  };

  return {
    record(tx) {
      const elapsedMs = performance.now() - tx.startedAt;
      series.requests(tx.mode, tx.verdict.action, tx.verdict.engine).inc();
      if (tx.mode !== 'connect' && tx.mode !== 'tls-intercept') {
        series.duration(tx.verdict.action).observe(elapsedMs / 1000);
      }
      // a bumped tunnel's bytes are its requests' bytes (counted with them), encrypted
      const counted = tx.tls?.action !== 'bump' || tx.mode === 'bumped';
      if (counted && tx.bytesIn) series.bytesIn.inc(tx.bytesIn);
      if (counted && tx.bytesOut) series.bytesOut.inc(tx.bytesOut);
      tx.durationMs = Math.round(elapsedMs);
      writeAccessLog(tx);
      if (tx.verdict.action === 'block' || opts.eventsAllowed) {
        pendingEvents.push(tx);
        eventTimer ??= setTimeout(flushEvents, EVENT_BATCH_MS);
      }
    },
    async close() {
      if (eventTimer) clearTimeout(eventTimer);
      flushEvents();
      if (flushTimer) clearInterval(flushTimer);
      if (!destination) return;
      await new Promise<void>((resolve) => {
        destination.flush(() => resolve());
      });
      if (opts.accessLog !== 'stdout') destination.end();
    },
  };
}

/** Which engine's stream a transaction's event goes to: TLS mediation's, the antivirus', or web filtering's. */
function eventEngine(tx: Transaction, tunnel: boolean): 'tls' | 'av' | 'web' {
  if (tunnel || tx.verdict.engine === 'tls-mediation') return 'tls';
  return tx.verdict.engine === 'antivirus' ? 'av' : 'web';
}
