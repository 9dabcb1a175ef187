import { trace } from '@opentelemetry/api';
import { type Logger, pino } from 'pino';

export type { Logger };

export interface LoggerOptions {
  service: string;
  level?: string;
  /** Where to write; defaults to stdout. Tests pass a stream to capture lines. */
  destination?: NodeJS.WritableStream;
}

/**
 * A pino logger whose every line carries `service.name` and, inside a span,
 * `trace_id`/`span_id`, so a log line leads to its trace.
 */
export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? process.env.MOAT_LOG_LEVEL ?? 'info',
      base: { 'service.name': opts.service, pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      mixin() {
        const span = trace.getActiveSpan();
        if (!span) return {};
        const { traceId, spanId } = span.spanContext();
        return { trace_id: traceId, span_id: spanId };
      },
      redact: {
        paths: ['*.password', '*.secret', '*.psk', '*.privateKey', 'authorization'],
        censor: '[redacted]',
      },
    },
    opts.destination as pino.DestinationStream | undefined,
  );
}
