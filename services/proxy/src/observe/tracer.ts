import { randomFillSync } from 'node:crypto';
import { getTracer, spansRecorded } from '@moat/telemetry';
import { ROOT_CONTEXT, type Span, type SpanOptions, TraceFlags, trace } from '@opentelemetry/api';

/**
 * The proxy's tracer, looked up once. Taken before the SDK starts, it is the API's proxy tracer,
 * which delegates to the real one as soon as the SDK registers.
 */
const tracer = getTracer('moat-proxy');

// Ids come from a pool of random bytes refilled in blocks: one syscall per 512 spans, not per span.
const POOL = Buffer.alloc(24 * 512);
let offset = POOL.length;
function randomHex(bytes: number): string {
  if (offset + bytes > POOL.length) {
    randomFillSync(POOL);
    offset = 0;
  }
  const hex = POOL.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

/**
 * A span for one request or one of its steps. When spans are exported it is a real span, child of
 * `parent`. When nothing records spans (no OTLP endpoint), building them would cost about a third
 * of the proxy's CPU per request for nothing: the request then gets a non-recording span that
 * still carries a fresh trace id (block pages, events and logs show it), and its steps share it.
 */
export function startSpan(name: string, options: SpanOptions, parent?: Span): Span {
  if (spansRecorded()) {
    return tracer.startSpan(name, options, parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
  }
  if (parent)
    return parent.isRecording()
      ? tracer.startSpan(name, options, trace.setSpan(ROOT_CONTEXT, parent))
      : parent;
  return trace.wrapSpanContext({ traceId: randomHex(16), spanId: randomHex(8), traceFlags: TraceFlags.NONE });
}
