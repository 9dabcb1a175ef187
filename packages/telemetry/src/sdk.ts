import { DiagConsoleLogger, DiagLogLevel, diag } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import { BatchSpanProcessor, NoopSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** Extra span processors (tests). */
  spanProcessors?: SpanProcessor[];
  env?: NodeJS.ProcessEnv;
}

export interface Telemetry {
  /** Whether spans are exported over OTLP. Trace ids exist either way (block pages show them). */
  readonly exporting: boolean;
  shutdown(): Promise<void>;
}

/**
 * Starts the OpenTelemetry Node SDK. Configured only through OTEL_* variables: spans are
 * exported over OTLP (http/protobuf) when OTEL_EXPORTER_OTLP_ENDPOINT or
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and not at all otherwise — never to a guessed
 * default address. Call before the service creates its clients.
 */
let recording = false;

/**
 * Whether spans go anywhere (an OTLP exporter, or a test's processor). When they do not, a hot path
 * may skip building them and only mint trace ids (see `lightSpan`).
 */
export function spansRecorded(): boolean {
  return recording;
}

export function startTelemetry(opts: TelemetryOptions): Telemetry {
  const env = opts.env ?? process.env;
  if (env.OTEL_LOG_LEVEL === 'debug') diag.setLogger(new DiagConsoleLogger(), DiagLogLevel.DEBUG);
  const disabled = env.OTEL_SDK_DISABLED === 'true' || env.OTEL_TRACES_EXPORTER === 'none';
  const tracesUrl =
    env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (env.OTEL_EXPORTER_OTLP_ENDPOINT
      ? `${env.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/$/, '')}/v1/traces`
      : undefined);
  const exporting = !disabled && tracesUrl !== undefined;

  // Without any processor the SDK installs no tracer provider and spans get no ids; block pages
  // and events need trace ids even when nothing is exported, hence the no-op processor.
  const spanProcessors: SpanProcessor[] = [...(opts.spanProcessors ?? []), new NoopSpanProcessor()];
  if (exporting)
    spanProcessors.push(new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: tracesUrl }) }));

  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: env.OTEL_SERVICE_NAME ?? opts.serviceName,
      [ATTR_SERVICE_VERSION]: opts.serviceVersion ?? 'dev',
    }),
    spanProcessors,
    metricReaders: [],
    logRecordProcessors: [],
    // No automatic instrumentation: services create the spans that mean something (one trace per
    // proxied request, per scan, per call). The http instrumentation in particular would add a second
    // server span to every proxied request, trust clients' traceparent headers, and cost the proxy
    // a large share of its CPU per request.
    instrumentations: [],
  });
  sdk.start();
  recording = exporting || (opts.spanProcessors?.length ?? 0) > 0;
  return {
    exporting,
    shutdown: () => sdk.shutdown(),
  };
}
