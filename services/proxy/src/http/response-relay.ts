/**
 * The response side of a forwarded request: undici hands the upstream response over as it parses it
 * (head, body chunks, end) and this relay checks it against the content filter and writes it to the
 * client as it comes. There is no intermediate stream and no pipe: each chunk goes straight to the
 * client socket, and a full client socket pauses the upstream parser (back-pressure).
 */
import type { Span } from '@opentelemetry/api';
import { SpanStatusCode } from '@opentelemetry/api';
import { fileTypeFromBuffer } from 'file-type';
import { decodedHead } from '../antivirus/content.js';
import { wantsScan } from '../antivirus/stage.js';
import type { Decision } from '../pipeline.js';
import { annotate } from '../pipeline.js';
import type { Antivirus, ContentFilter } from '../policy/compile.js';
import {
  dispositionFileName,
  filterResponse,
  mediaType,
  type ResponseFacts,
  type Verdict,
} from '../policy/decide.js';
import { UpstreamError } from '../upstream/upstream.js';
import {
  type Exchange,
  proxyVerdict,
  sendPage,
  sendUpstreamError,
  totalTimeout,
  withContext,
} from './exchange.js';
import { endToEndHeaders, headerValue, withVia } from './headers.js';
import type { Target } from './target.js';

/** Bytes file-type needs to recognise a format. */
const SNIFF_BYTES = 4100;
/** How long a response whose first bytes trickle in waits for SNIFF_BYTES before it is sniffed. */
const SNIFF_WAIT_MS = 500;
/** A sniffed head that decodes to more than this is not sniffed (and, for the antivirus, scanned). */
const SNIFF_DECODED_LIMIT = 2 ** 20;

/**
 * The type file-type sees in a body's first bytes; an encoded body is sniffed as the client will see
 * it (a gzip-encoded zip is a zip). `decodable` is false when its encoding cannot be undone.
 */
async function sniffHead(
  first: Buffer,
  contentEncoding: string | undefined,
): Promise<{ decodable: boolean; sniffed?: { mime: string; ext: string } | undefined }> {
  const raw = first.subarray(0, SNIFF_BYTES);
  const decoded = contentEncoding ? await decodedHead(raw, contentEncoding, SNIFF_DECODED_LIMIT) : raw;
  const head = (decoded ?? raw).subarray(0, SNIFF_BYTES);
  return {
    decodable: decoded !== undefined,
    sniffed: head.length > 0 ? await fileTypeFromBuffer(head) : undefined,
  };
}

const holdHead = (status: number, headers: ResponseHeaders, facts: ResponseFacts): HeldHead => ({
  status,
  headers,
  facts,
  chunks: [],
  size: 0,
  ended: false,
  sniffing: false,
});

/** The request body was larger than the profile allows (raised while it streams upstream). */
export class BodyTooLargeError extends Error {
  override name = 'BodyTooLargeError';
}

/** undici's controller, reduced to what the relay uses. */
interface Controller {
  abort(reason: Error): void;
  pause(): void;
  resume(): void;
}

type ResponseHeaders = Record<string, string | string[] | undefined>;

/** A response head held until the first bytes of its body are sniffed, and those bytes. */
interface HeldHead {
  status: number;
  headers: ResponseHeaders;
  facts: ResponseFacts;
  chunks: Buffer[];
  size: number;
  /** The body ended before the sniff. */
  ended: boolean;
  sniffing: boolean;
  timer?: NodeJS.Timeout;
}

export interface RelayOptions {
  target: Target;
  serverIp: string;
  decision: Decision;
  contentFilter: ContentFilter | undefined;
  /** The antivirus profile when downloads are scanned. */
  antivirus: Antivirus | undefined;
  /** The upstream client span; ended with the relay. */
  span: Span;
  /** Answers a request body that grew past the profile's limit while streaming. */
  onBodyTooLarge: () => void;
}

export class ResponseRelay {
  readonly done: Promise<void>;
  private resolveDone!: () => void;
  private controller: Controller | null = null;
  /** Set once the relay is done; undici's echo of an abort the relay made itself is then ignored. */
  private finished = false;
  /** The client socket is full: the upstream parser waits for it to drain. */
  private draining = false;
  /** The response head waiting for the first bytes of the body to be sniffed. */
  private held?: HeldHead;
  /** The antivirus profile scans some types only and the declared ones were not among them. */
  private sniffForScan = false;
  private contentLength: number | undefined;
  private readonly limit: number | undefined;
  /** Bytes of this response counted against the proxy-wide budget for held bodies. */
  private heldBytes = 0;
  /**
   * A body held for the antivirus: head and chunks wait here until the verdict (nothing reaches the
   * client unscanned); undefined when this response is not scanned.
   */
  private scan?: { status: number; headers: ResponseHeaders; chunks: Buffer[]; size: number };
  /** A stop() that came before undici started the request. */
  private pendingStop?: Error;
  private readonly resume = () => {
    this.draining = false;
    this.controller?.resume();
  };

  constructor(
    private readonly ex: Exchange,
    private readonly opts: RelayOptions,
  ) {
    this.done = new Promise((resolve) => {
      this.resolveDone = resolve;
    });
    this.limit = opts.contentFilter?.maxResponseBodySize;
  }

  /** Stops the upstream exchange; what the client gets is decided in onResponseError. */
  stop(reason: Error): void {
    if (this.finished) return;
    if (this.controller) this.controller.abort(reason);
    else this.pendingStop = reason;
  }

  onRequestStart(controller: Controller): void {
    this.controller = controller;
    if (this.pendingStop) controller.abort(this.pendingStop);
  }

  onResponseStart(_controller: Controller, status: number, headers: ResponseHeaders): void {
    if (status < 200) return; // informational: the final response follows
    const { ex, opts } = this;
    this.opts.span.setAttribute('http.response.status_code', status);
    const declaredType = mediaType(headerValue(headers['content-type']));
    if (declaredType) ex.tx.contentType = declaredType;
    const length = headerValue(headers['content-length']);
    this.contentLength = length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined;

    const fileName = dispositionFileName(headerValue(headers['content-disposition']));
    if (!this.startScan(status, declaredType, fileName)) return;
    const filter = opts.contentFilter;
    const facts: ResponseFacts = {
      ...(declaredType ? { declaredType } : {}),
      ...(fileName ? { fileName } : {}),
      ...(this.contentLength !== undefined ? { contentLength: this.contentLength } : {}),
    };
    if (!filter) {
      if (this.sniffForScan) this.held = holdHead(status, headers, facts);
      else this.writeHead(status, headers);
      return;
    }
    const blocked = filterResponse(filter, facts);
    if (blocked) {
      this.block(blocked);
      return;
    }
    const sniffs = filter.blockMimeTypes.length + filter.blockExtensions.size > 0 || this.sniffForScan;
    if (sniffs && ex.req.method !== 'HEAD') this.held = holdHead(status, headers, facts);
    else this.writeHead(status, headers);
  }

  onResponseData(_controller: Controller, chunk: Buffer): void {
    if (this.finished) return;
    if (this.held) this.collectForSniff(this.held, chunk);
    else this.write(chunk);
  }

  onResponseEnd(): void {
    if (this.finished) return;
    const held = this.held;
    if (held) {
      // sniffed with whatever arrived (nothing, for an empty body), then ended
      held.ended = true;
      this.sniff(held);
      return;
    }
    this.endBody();
  }

  private endBody(): void {
    if (this.scan) {
      this.deliverAfterScan(this.scan);
      return;
    }
    this.ex.res.end();
    this.finish();
  }

  /**
   * The first bytes of the body, for file-type: up to SNIFF_BYTES, or the whole body when shorter.
   * A server that trickles its first bytes gets SNIFF_WAIT_MS, then they are sniffed as they are.
   */
  private collectForSniff(held: HeldHead, chunk: Buffer): void {
    held.chunks.push(chunk);
    held.size += chunk.length;
    if (held.sniffing) return; // arrived although paused (undici can finish a body past a pause)
    if (held.size >= SNIFF_BYTES) this.sniff(held);
    else held.timer ??= setTimeout(() => this.sniff(held), SNIFF_WAIT_MS);
  }

  private sniff(held: HeldHead): void {
    if (held.sniffing || this.finished) return;
    held.sniffing = true;
    clearTimeout(held.timer);
    this.controller?.pause();
    sniffHead(Buffer.concat(held.chunks), headerValue(held.headers['content-encoding'])).then(
      ({ decodable, sniffed }) => {
        if (this.finished) return;
        this.held = undefined;
        const blocked =
          sniffed &&
          this.opts.contentFilter &&
          filterResponse(this.opts.contentFilter, {
            ...held.facts,
            sniffed: { mime: sniffed.mime, ext: sniffed.ext },
          });
        if (blocked) {
          this.block(blocked);
          return;
        }
        // what cannot be decoded cannot be told apart from what the profile scans: scanned
        const scanIt = this.sniffForScan && (!decodable || (sniffed && this.sniffedWantsScan(sniffed)));
        if (scanIt && !this.beginScan(held.status)) return;
        this.writeHead(held.status, held.headers);
        for (const chunk of held.chunks) {
          if (this.finished) return;
          this.write(chunk);
        }
        if (this.finished) return;
        if (held.ended) this.endBody();
        else if (!this.draining) this.controller?.resume();
      },
      (err: unknown) => {
        // not delivered unless inspected: fail closed
        this.ex.deps.log.error({ err, url: this.ex.tx.url }, 'sniffing the response failed');
        this.block(proxyVerdict(500, 'WEBFILTER_ERROR', 'The response could not be inspected.'));
      },
    );
  }

  /**
   * Whether this response waits for an antivirus verdict; false when it was already answered (a body
   * declared larger than the profile scans, under overSizeAction block).
   */
  private startScan(status: number, declaredType: string | undefined, fileName: string | undefined): boolean {
    const { ex, opts } = this;
    const av = opts.antivirus;
    if (!av || ex.req.method === 'HEAD' || status === 204 || status === 304) return true;
    const subject = {
      ...(declaredType ? { declaredType } : {}),
      ...(fileName ? { fileName } : {}),
      path: opts.target.path,
    };
    if (!wantsScan(av, subject)) {
      // the server names the type and the file: what the first bytes say decides too, so an
      // executable labelled text/plain is still scanned
      this.sniffForScan = true;
      return true;
    }
    return this.beginScan(status);
  }

  /** Holds this response for a verdict (false when an oversized body was answered already). */
  private beginScan(status: number): boolean {
    const { ex, opts } = this;
    const av = opts.antivirus;
    if (!av) return true;
    if (this.contentLength !== undefined && this.contentLength > av.maxScanSize) {
      const blocked = ex.deps.antivirus.overSize(ex, av, this.contentLength, 'download', opts.decision);
      if (blocked) {
        this.block(blocked);
        return false;
      }
      return true;
    }
    this.scan = { status, headers: {}, chunks: [], size: 0 };
    return true;
  }

  /** Whether the type the first bytes show is one the profile scans (by MIME type or extension). */
  private sniffedWantsScan(sniffed: { mime: string; ext: string }): boolean {
    const av = this.opts.antivirus;
    return (
      !!av && wantsScan(av, { declaredType: sniffed.mime, fileName: `sniffed.${sniffed.ext}`, path: '' })
    );
  }

  /** The whole body is held: scan it, then deliver it in one piece or answer with the verdict's page. */
  private deliverAfterScan(scan: NonNullable<ResponseRelay['scan']>): void {
    const { ex, opts } = this;
    const av = opts.antivirus;
    if (!av) return;
    const body =
      scan.chunks.length === 1 ? (scan.chunks[0] as Buffer) : Buffer.concat(scan.chunks, scan.size);
    scan.chunks = [];
    const encoding = headerValue(scan.headers['content-encoding']);
    ex.deps.antivirus.check(ex, av, body, 'download', opts.decision, encoding).then(
      (blocked) => {
        if (this.finished) return;
        this.scan = undefined;
        if (ex.closed) return this.finish();
        if (ex.timedOut) {
          sendUpstreamError(ex, totalTimeout(ex.deps), opts.target);
          return this.finish();
        }
        if (blocked) {
          sendPage(ex, blocked, opts.target);
          return this.finish();
        }
        this.contentLength = body.length;
        this.writeHead(scan.status, scan.headers);
        ex.tx.bytesOut += body.length;
        ex.res.end(body);
        this.finish();
      },
      (err: unknown) => {
        ex.deps.log.error({ err, url: ex.tx.url }, 'the antivirus step failed');
        this.block(proxyVerdict(500, 'WEBFILTER_ERROR', 'The response could not be inspected.'));
      },
    );
  }

  /** A body that grew past maxScanSize while held: blocked, or delivered from here on unscanned. */
  private scanOverflow(scan: NonNullable<ResponseRelay['scan']>): void {
    const { ex, opts } = this;
    if (!opts.antivirus) return;
    const blocked = ex.deps.antivirus.overSize(ex, opts.antivirus, undefined, 'download', opts.decision);
    if (blocked) {
      this.block(blocked);
      return;
    }
    this.scan = undefined;
    this.writeHead(scan.status, scan.headers);
    // one write of what was held (one drain listener at most), then streaming as usual
    const held = Buffer.concat(scan.chunks, scan.size);
    scan.chunks = [];
    this.releaseHeld();
    if (!this.finished) this.write(held);
  }

  onResponseError(_controller: Controller | null, err: Error): void {
    if (this.finished) return;
    const { ex, opts } = this;
    const { deps, req, res, tx } = ex;
    this.finish(err);
    if (ex.closed) {
      tx.error ??= 'client closed the connection';
      return;
    }
    if (ex.timedOut) {
      if (res.headersSent) res.destroy();
      else sendUpstreamError(ex, totalTimeout(deps), opts.target);
      return;
    }
    if (res.headersSent) {
      // headers are out: the only honest signal left is an incomplete response
      tx.error ??= `response: ${err.message}`;
      res.destroy();
      return;
    }
    if (err instanceof BodyTooLargeError || err.cause instanceof BodyTooLargeError) {
      opts.onBodyTooLarge();
      return;
    }
    if (req.errored) {
      // the client's body was malformed mid-stream: the upstream got an incomplete request, never a whole one
      deps.metrics.badRequests.inc({ reason: 'body' });
      tx.error = `request body: ${req.errored.message}`;
      res.destroy();
      return;
    }
    const failure =
      err instanceof UpstreamError
        ? err
        : deps.upstream.upstreamFailure(err, opts.serverIp, opts.target.port);
    deps.metrics.upstreamErrors.inc({ kind: failure.kind });
    sendUpstreamError(ex, failure, opts.target);
  }

  private writeHead(status: number, upstreamHeaders: ResponseHeaders): void {
    const { ex } = this;
    if (this.scan) {
      // held until the verdict
      this.scan.status = status;
      this.scan.headers = upstreamHeaders;
      return;
    }
    const headers = withVia(
      endToEndHeaders(upstreamHeaders as Record<string, string | string[]>),
      '1.1',
      ex.deps.config.visibleHostname,
    );
    if (this.contentLength !== undefined) headers['content-length'] = String(this.contentLength);
    // the id that finds this request's trace, for the user's support ticket and for debugging
    if (ex.tx.traceId) headers['x-moat-trace-id'] = ex.tx.traceId;
    ex.tx.status = status;
    ex.res.writeHead(status, headers);
  }

  private write(chunk: Buffer): void {
    const { ex } = this;
    const tx = ex.tx;
    const scan = this.scan;
    if (scan) {
      if (!ex.deps.antivirus.hold(chunk.length)) {
        const av = this.opts.antivirus;
        const verdict =
          av && ex.deps.antivirus.busy(ex, av, 'download', this.opts.decision, scan.size + chunk.length);
        if (verdict) {
          this.block(verdict);
          return;
        }
        // fail-open: delivered unscanned from here on (recorded)
        const held = Buffer.concat([...scan.chunks, chunk]);
        this.scan = undefined;
        this.releaseHeld();
        this.writeHead(scan.status, scan.headers);
        this.write(held);
        return;
      }
      this.heldBytes += chunk.length;
      scan.chunks.push(chunk);
      scan.size += chunk.length;
      if (this.limit !== undefined && scan.size > this.limit) {
        this.block(this.overLimit(403, 'and was blocked'));
        return;
      }
      if (scan.size > (this.opts.antivirus?.maxScanSize ?? Number.POSITIVE_INFINITY)) this.scanOverflow(scan);
      return;
    }
    tx.bytesOut += chunk.length;
    if (this.limit !== undefined && tx.bytesOut > this.limit) {
      this.cutOff();
      return;
    }
    if (tx.bytesOut === this.contentLength) {
      // the whole body is here: end now, so head and body leave in one write
      ex.res.end(chunk);
      this.finish();
      return;
    }
    if (!ex.res.write(chunk)) {
      this.draining = true;
      this.controller?.pause();
      ex.res.once('drain', this.resume);
    }
  }

  /** A streamed response grew past the profile's limit after its head went out. */
  private cutOff(): void {
    const { ex } = this;
    ex.tx.verdict = this.overLimit(ex.tx.status, 'and was cut off');
    annotate(ex.span, ex.tx.verdict);
    ex.tx.error ??= 'response body over the configured limit';
    this.abortUpstream();
    ex.res.destroy();
  }

  private overLimit(status: number, what: string): Verdict {
    return withContext(
      {
        action: 'block',
        engine: 'content-filter',
        tag: 'CONTENT_FILTERING_BLOCKED',
        status,
        profile: this.opts.contentFilter?.profile ?? '',
        reason: `The response exceeded the limit of ${this.limit} bytes ${what}.`,
      },
      this.opts.decision,
    );
  }

  /** A content verdict before anything was delivered: the upstream is dropped and the page sent. */
  private block(verdict: Verdict): void {
    this.abortUpstream();
    sendPage(this.ex, withContext(verdict, this.opts.decision), this.opts.target);
  }

  private abortUpstream(): void {
    const controller = this.controller;
    this.finish();
    controller?.abort(new Error('the proxy stopped this response'));
  }

  /** Gives the bytes this response held for its verdict back to the proxy-wide budget. */
  private releaseHeld(): void {
    this.ex.deps.antivirus.release(this.heldBytes);
    this.heldBytes = 0;
  }

  private finish(err?: Error): void {
    if (this.finished) return;
    this.releaseHeld();
    clearTimeout(this.held?.timer);
    this.finished = true;
    if (err) this.opts.span.setStatus({ code: SpanStatusCode.ERROR, message: err.message });
    this.opts.span.end();
    this.resolveDone();
  }
}
