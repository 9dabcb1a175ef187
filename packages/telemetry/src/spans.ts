import {
  type Attributes,
  type Context,
  context,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';

export function getTracer(name = 'moat'): Tracer {
  return trace.getTracer(name);
}

/** Trace id of the active span, for block pages and events; undefined outside a span. */
export function activeTraceId(): string | undefined {
  const ctx = trace.getActiveSpan()?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}

export interface WithSpanOptions {
  attributes?: Attributes;
  kind?: SpanKind;
  /** Parent context (e.g. extracted from NATS headers); default: the active one. */
  parent?: Context;
}

/**
 * Runs `fn` inside a new active span. On a throw the span records the exception, gets
 * status ERROR and `error.type`; the span always ends, and the error propagates.
 */
export async function withSpan<T>(
  name: string,
  opts: WithSpanOptions,
  fn: (span: Span) => Promise<T> | T,
): Promise<T> {
  const parent = opts.parent ?? context.active();
  const span = getTracer().startSpan(
    name,
    { kind: opts.kind ?? SpanKind.INTERNAL, ...(opts.attributes ? { attributes: opts.attributes } : {}) },
    parent,
  );
  try {
    return await context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    span.setAttribute('error.type', e.name);
    throw err;
  } finally {
    span.end();
  }
}
