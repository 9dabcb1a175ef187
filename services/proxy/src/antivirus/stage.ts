/**
 * The antivirus step of a transfer, per the antivirus profile of the matching UTM policy: which
 * bodies are scanned, what a verdict means for the client, and what happens without one. Nothing is
 * delivered unscanned without a trace of it: a fail-open delivery and an oversized body let through
 * are each an event; a scanner outage blocks (fail-closed, the default) and raises an alert.
 */
import { type Bus, publishEvent } from '@moat/bus';
import type { EventInput, Logger } from '@moat/log';
import type { ScanClient, ScanDirection } from '@moat/scan';
import type { Exchange } from '../http/exchange.js';
import { withContext } from '../http/exchange.js';
import type { ProxyMetrics } from '../observe/metrics.js';
import type { Decision } from '../pipeline.js';
import type { Antivirus } from '../policy/compile.js';
import { extensionsOf, mimeMatches, pathOnly, type Verdict } from '../policy/decide.js';
import { DecodedTooLargeError, scannableBytes, UndecodableBodyError } from './content.js';

/** What is known about a body before it is read. */
export interface ScanSubject {
  declaredType?: string;
  fileName?: string;
  /** The request path (its last segment's extension counts as the file's). */
  path: string;
}

/** Scans the profile asks for: every body, or only those matching its MIME types or extensions. */
export function wantsScan(av: Antivirus, subject: ScanSubject): boolean {
  if (!av.scanMimeTypes && !av.scanExtensions) return true;
  if (av.scanMimeTypes && mimeMatches(av.scanMimeTypes, subject.declaredType)) return true;
  if (av.scanExtensions) {
    // decoded as the content filter decodes it: /x%2Eexe is an .exe
    const names = [
      subject.fileName ? extensionsOf(subject.fileName) : [],
      extensionsOf(pathOnly(subject.path)),
    ].flat();
    if (names.some((ext) => av.scanExtensions?.has(ext))) return true;
  }
  return false;
}

/** One alert per this interval while scanners are unavailable (every blocked request is an event anyway). */
const ALERT_INTERVAL_MS = 10_000;

export interface AntivirusDeps {
  scanner: ScanClient;
  bus: Bus;
  metrics: ProxyMetrics;
  log: Logger;
  instance: string;
  /** Bytes of bodies this process may hold for verdicts at once. */
  holdLimit: number;
}

export class AntivirusStage {
  private lastAlert = 0;
  /** Bytes currently held for verdicts, across every transfer of this process. */
  private held = 0;

  constructor(private readonly deps: AntivirusDeps) {}

  /** Reserves room for `bytes` more held bytes; false when the budget is spent. */
  hold(bytes: number): boolean {
    if (this.held + bytes > this.deps.holdLimit) return false;
    this.held += bytes;
    return true;
  }

  release(bytes: number): void {
    this.held = Math.max(0, this.held - bytes);
  }

  get heldBytes(): number {
    return this.held;
  }

  /** The budget for held bodies is spent: the profile's fail mode, as for any missing verdict. */
  busy(ex: Exchange, av: Antivirus, direction: ScanDirection, decision: Decision, bytes: number) {
    this.deps.metrics.avBusy.inc();
    return this.noVerdict(
      ex,
      av,
      direction,
      decision,
      `the gateway holds ${this.deps.holdLimit} bytes for scanning already (MOAT_PROXY_AV_HOLD_LIMIT)`,
      bytes,
    );
  }

  /**
   * Scans `content`; returns the verdict that blocks it, or undefined to deliver it (clean, or
   * unscanned under fail-open, which is recorded).
   */
  async check(
    ex: Exchange,
    av: Antivirus,
    body: Buffer,
    direction: ScanDirection,
    decision: Decision,
    contentEncoding?: string,
  ): Promise<Verdict | undefined> {
    let content: Buffer;
    try {
      content = await scannableBytes(body, contentEncoding, av.maxScanSize);
    } catch (err) {
      if (err instanceof DecodedTooLargeError) return this.overSize(ex, av, undefined, direction, decision);
      if (!(err instanceof UndecodableBodyError)) throw err;
      return this.noVerdict(ex, av, direction, decision, err.message, body.length);
    }
    const verdict = await this.deps.scanner.scan({
      content,
      timeoutMs: av.timeoutMs,
      direction,
      url: ex.tx.url,
      parent: ex.span,
    });
    this.deps.metrics.avVerdicts.inc({ result: verdict.result, cached: String(verdict.cached) });
    ex.tx.antivirus = {
      result: verdict.result,
      cached: verdict.cached,
      ...(verdict.signature ? { signature: verdict.signature } : {}),
    };
    if (verdict.result === 'clean') return undefined;
    if (verdict.result === 'infected') {
      return withContext(
        {
          action: 'block',
          engine: 'antivirus',
          tag: 'AV_VIRUS_DETECTED',
          status: 403,
          profile: av.profile,
          signature: verdict.signature ?? 'unknown',
          reason: `The ${direction === 'upload' ? 'upload' : 'file'} contains ${verdict.signature} (detected by the gateway antivirus${verdict.cached ? '; a cached verdict for this exact content' : ''}).`,
        },
        decision,
      );
    }
    return this.noVerdict(
      ex,
      av,
      direction,
      decision,
      verdict.reason ?? 'no verdict',
      content.length,
      verdict.errorKind !== 'unscannable',
    );
  }

  /** No verdict (scanners unavailable, or content that cannot be scanned): the profile's fail mode decides. */
  private noVerdict(
    ex: Exchange,
    av: Antivirus,
    direction: ScanDirection,
    decision: Decision,
    reason: string,
    bytes: number,
    scannerFault = false,
  ): Verdict | undefined {
    // an outage alerts whatever the fail mode: under fail-open it is when content flows unscanned
    if (scannerFault) {
      this.alert(reason);
      this.deps.metrics.avUnavailable.inc();
    }
    if (av.failMode === 'open') {
      this.unscanned(ex, av, direction, `fail-open: ${reason}`, bytes);
      return undefined;
    }
    return withContext(
      {
        action: 'block',
        engine: 'antivirus',
        tag: scannerFault ? 'AV_SCANNER_UNAVAILABLE' : 'AV_SCAN_IMPOSSIBLE',
        status: scannerFault ? 503 : 403,
        profile: av.profile,
        reason: `The ${direction === 'upload' ? 'upload' : 'file'} could not be scanned for viruses (${reason}), and antivirus profile "${av.profile}" blocks what it cannot scan.${scannerFault ? ' Try again later; if it persists, tell your administrator the scanners are unavailable.' : ''}`,
      },
      decision,
    );
  }

  /** A body over maxScanSize: blocked, or let through unscanned (recorded), per the profile. */
  overSize(
    ex: Exchange,
    av: Antivirus,
    size: number | undefined,
    direction: ScanDirection,
    decision: Decision,
  ) {
    const what = size === undefined ? `more than ${av.maxScanSize} bytes` : `${size} bytes`;
    if (av.overSizeAction === 'allow') {
      this.unscanned(ex, av, direction, `over maxScanSize (${what})`, size);
      return undefined;
    }
    this.deps.metrics.avVerdicts.inc({ result: 'oversize', cached: 'false' });
    return withContext(
      {
        action: 'block',
        engine: 'antivirus',
        tag: 'AV_OVERSIZE_BLOCKED',
        status: 403,
        profile: av.profile,
        reason: `The ${direction === 'upload' ? 'upload' : 'file'} (${what}) is larger than antivirus profile "${av.profile}" scans (${av.maxScanSize} bytes), and the profile blocks what it cannot scan.`,
      },
      decision,
    );
  }

  private unscanned(ex: Exchange, av: Antivirus, direction: ScanDirection, why: string, bytes?: number) {
    this.deps.metrics.avUnscanned.inc({ reason: why.startsWith('fail-open') ? 'fail-open' : 'oversize' });
    ex.tx.antivirus = { result: 'unscanned' };
    this.publish({
      tag: 'AV_SCAN_SKIPPED',
      engine: 'av',
      action: 'unscanned',
      severity: 'warning',
      reason: `Delivered without a virus scan: ${why}.`,
      service: 'proxy',
      instance: this.deps.instance,
      profile: av.profile,
      url: ex.tx.url,
      ...(bytes !== undefined ? { bytes } : {}),
      ...(ex.tx.traceId ? { traceId: ex.tx.traceId } : {}),
      source: { ip: ex.tx.client.ip, port: ex.tx.client.port },
      details: { direction },
    });
  }

  private alert(reason: string): void {
    const now = Date.now();
    if (now - this.lastAlert < ALERT_INTERVAL_MS) return;
    this.lastAlert = now;
    this.deps.log.error({ reason }, 'antivirus scanners unavailable: blocking what cannot be scanned');
    this.publish({
      tag: 'AV_SCANNER_UNAVAILABLE',
      engine: 'av',
      action: 'unavailable',
      severity: 'critical',
      reason: `No antivirus verdict: ${reason}. Transfers under fail-closed profiles are blocked until the scanners answer.`,
      service: 'proxy',
      instance: this.deps.instance,
    });
  }

  private publish(event: EventInput): void {
    try {
      publishEvent(this.deps.bus, event, { validate: false });
    } catch (err) {
      this.deps.log.error({ err: (err as Error).message }, 'could not publish an antivirus event');
    }
  }
}
