import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpOpen } from './ports.js';
import { startProcess, waitFor } from './process.js';

/** Where scripts/lib/otelcol/build.sh puts the collector; MOAT_OTELCOL_BIN overrides it. */
const defaultBinary = '/opt/moat/otelcol/otelcol-moat';

export type AttributeValue =
  | string
  | number
  | boolean
  | null
  | AttributeValue[]
  | { [key: string]: AttributeValue };

/** One span as the collector received it, flattened from OTLP's ResourceSpans/ScopeSpans. */
export interface CollectedSpan {
  /** 32 hex digits. */
  traceId: string;
  /** 16 hex digits. */
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  /** OTLP's span kind by name; mind that @opentelemetry/api's SpanKind numbers differ from OTLP's. */
  kind: 'UNSPECIFIED' | 'INTERNAL' | 'SERVER' | 'CLIENT' | 'PRODUCER' | 'CONSUMER';
  /** The resource's `service.name`. */
  serviceName: string;
  /** `code` by name (OTLP's and @opentelemetry/api's SpanStatusCode agree: UNSET 0, OK 1, ERROR 2). */
  status: { code: 'UNSET' | 'OK' | 'ERROR'; message?: string };
  /** Span attributes; OTLP int values become numbers (strings past 2^53), bytes stay base64. */
  attributes: Record<string, AttributeValue>;
  /** Resource attributes (service.name, service.version, telemetry.sdk.*). */
  resource: Record<string, AttributeValue>;
  /** Nanoseconds since the epoch, as OTLP's decimal strings (past 2^53, so not numbers). */
  startTimeUnixNano: string;
  endTimeUnixNano: string;
}

export interface OtelCollector {
  /** `http://127.0.0.1:<port>`, for OTEL_EXPORTER_OTLP_ENDPOINT (OTLP http/protobuf or http/json). */
  endpoint: string;
  /** Every span received so far, in arrival order. */
  spans(): Promise<CollectedSpan[]>;
  /** Polls until `predicate(spans)` holds (default 10 s); the error lists the spans that did arrive. */
  waitForSpans(predicate: (spans: CollectedSpan[]) => boolean, timeoutMs?: number): Promise<CollectedSpan[]>;
  stop(): Promise<void>;
}

// OTLP/JSON as the collector's file exporter writes it (only the fields read here).
interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: string | number;
  doubleValue?: number;
  bytesValue?: string;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
}
interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: OtlpKeyValue[] };
    scopeSpans?: { spans?: OtlpSpan[] }[];
  }[];
}

const kinds = ['UNSPECIFIED', 'INTERNAL', 'SERVER', 'CLIENT', 'PRODUCER', 'CONSUMER'] as const;
const statusCodes = ['UNSET', 'OK', 'ERROR'] as const;

function anyValue(v: OtlpAnyValue | undefined): AttributeValue {
  if (!v) return null;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) {
    const n = Number(v.intValue);
    return Number.isSafeInteger(n) ? n : String(v.intValue);
  }
  if (v.doubleValue !== undefined) return v.doubleValue;
  if (v.bytesValue !== undefined) return v.bytesValue;
  if (v.arrayValue) return (v.arrayValue.values ?? []).map(anyValue);
  if (v.kvlistValue) return keyValues(v.kvlistValue.values);
  return null;
}

function keyValues(kvs: OtlpKeyValue[] | undefined): Record<string, AttributeValue> {
  return Object.fromEntries((kvs ?? []).map((kv) => [kv.key, anyValue(kv.value)]));
}

/** Flattens the file exporter's output: one ResourceSpans batch (OTLP/JSON) per complete line. */
export function parseOtlpJsonLines(text: string): CollectedSpan[] {
  const complete = text.slice(0, text.lastIndexOf('\n') + 1); // a flush may end mid-line
  const spans: CollectedSpan[] = [];
  for (const line of complete.split('\n')) {
    if (!line.trim()) continue;
    for (const rs of (JSON.parse(line) as OtlpTraces).resourceSpans ?? []) {
      const resource = keyValues(rs.resource?.attributes);
      for (const ss of rs.scopeSpans ?? []) {
        for (const s of ss.spans ?? []) {
          const status: CollectedSpan['status'] = { code: statusCodes[s.status?.code ?? 0] ?? 'UNSET' };
          if (s.status?.message) status.message = s.status.message;
          spans.push({
            traceId: s.traceId,
            spanId: s.spanId,
            ...(s.parentSpanId ? { parentSpanId: s.parentSpanId } : {}),
            name: s.name,
            kind: kinds[s.kind ?? 0] ?? 'UNSPECIFIED',
            serviceName: String(resource['service.name'] ?? ''),
            status,
            attributes: keyValues(s.attributes),
            resource,
            startTimeUnixNano: s.startTimeUnixNano,
            endTimeUnixNano: s.endTimeUnixNano,
          });
        }
      }
    }
  }
  return spans;
}

/**
 * Starts a real OpenTelemetry Collector (built by scripts/lib/otelcol/build.sh) with an OTLP/HTTP
 * receiver on a free loopback port and a file exporter writing OTLP/JSON lines to a temp file,
 * flushed every 10 ms. No gRPC listener and no self-metrics port, so several can run at once.
 */
export async function startOtelCollector(): Promise<OtelCollector> {
  const binary = process.env.MOAT_OTELCOL_BIN ?? defaultBinary;
  if (!existsSync(binary))
    throw new Error(
      `OpenTelemetry Collector not found at ${binary}: build it with scripts/lib/otelcol/build.sh ` +
        '(sudo scripts/setup.sh runs it), or point MOAT_OTELCOL_BIN at an otelcol with the otlp receiver and file exporter',
    );
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'moat-otelcol-'));
  const output = join(dir, 'traces.jsonl');
  const config = {
    receivers: { otlp: { protocols: { http: { endpoint: `127.0.0.1:${port}` } } } },
    exporters: { file: { path: output, format: 'json', flush_interval: '10ms' } },
    service: {
      pipelines: { traces: { receivers: ['otlp'], exporters: ['file'] } },
      telemetry: { metrics: { level: 'none' } },
    },
  };
  // JSON is YAML, which is what the collector reads.
  writeFileSync(join(dir, 'config.yaml'), JSON.stringify(config, null, 2));
  const proc = startProcess('otelcol', binary, ['--config', join(dir, 'config.yaml')]);
  try {
    await waitFor(`otelcol OTLP/HTTP receiver on port ${port}`, () => tcpOpen(port), {
      proc,
      timeoutMs: 20_000,
    });
  } catch (err) {
    await proc.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }

  const spans = async () => (existsSync(output) ? parseOtlpJsonLines(readFileSync(output, 'utf8')) : []);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    spans,
    async waitForSpans(predicate, timeoutMs = 10_000) {
      let last: CollectedSpan[] = [];
      try {
        await waitFor(
          'spans at the collector',
          async () => {
            last = await spans();
            return predicate(last);
          },
          { proc, timeoutMs },
        );
      } catch (err) {
        const seen = last.map((s) => `${s.serviceName}/${s.name} ${JSON.stringify(s.attributes)}`);
        throw new Error(`${(err as Error).message}\nspans received (${last.length}):\n${seen.join('\n')}`);
      }
      return last;
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
