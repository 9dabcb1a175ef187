import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { type OtelCollector, parseOtlpJsonLines, startOtelCollector } from './otel.js';

let collector: OtelCollector;

before(async () => {
  collector = await startOtelCollector();
});
after(async () => {
  await collector.stop();
});

/** A tracer provider exporting like the services do: OTLP http/protobuf to OTEL_EXPORTER_OTLP_ENDPOINT. */
function providerFor(endpoint: string, serviceName: string): TracerProvider {
  const saved = process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
  process.env.OTEL_EXPORTER_OTLP_ENDPOINT = endpoint;
  try {
    return new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': serviceName }),
      spanProcessors: [new SimpleSpanProcessor({ exporter: new OTLPTraceExporter() })],
    });
  } finally {
    if (saved === undefined) delete process.env.OTEL_EXPORTER_OTLP_ENDPOINT;
    else process.env.OTEL_EXPORTER_OTLP_ENDPOINT = saved;
  }
}

test('otel - a span exported over OTLP http/protobuf arrives with its attributes, status and service', async () => {
  const provider = providerFor(collector.endpoint, 'otel-test');
  const tracer = provider.getTracer('otel-test');
  const root = tracer.startSpan('request', { kind: SpanKind.SERVER });
  // No context manager is registered here, so the parent is passed explicitly.
  const child = tracer.startSpan(
    'verdict',
    {
      attributes: { 'test.verdict': 'block', 'test.rule.count': 3, 'test.cached': false, 'test.score': 0.5 },
    },
    trace.setSpan(ROOT_CONTEXT, root),
  );
  child.setAttribute('test.categories', ['malware', 'phishing']);
  child.setStatus({ code: SpanStatusCode.ERROR, message: 'blocked by policy' });
  child.end();
  root.end();
  const { traceId, spanId: rootId } = root.spanContext();
  await provider.shutdown();

  const spans = await collector.waitForSpans((all) => all.filter((s) => s.traceId === traceId).length === 2);
  const verdict = spans.find((s) => s.name === 'verdict');
  const request = spans.find((s) => s.name === 'request');
  assert.ok(verdict && request);
  assert.equal(verdict.serviceName, 'otel-test');
  assert.deepEqual(verdict.attributes, {
    'test.verdict': 'block',
    'test.rule.count': 3,
    'test.cached': false,
    'test.score': 0.5,
    'test.categories': ['malware', 'phishing'],
  });
  assert.deepEqual(verdict.status, { code: 'ERROR', message: 'blocked by policy' });
  assert.equal(verdict.kind, 'INTERNAL');
  assert.equal(verdict.parentSpanId, rootId);
  assert.match(verdict.spanId, /^[0-9a-f]{16}$/);
  assert.ok(BigInt(verdict.endTimeUnixNano) >= BigInt(verdict.startTimeUnixNano));
  assert.equal(request.kind, 'SERVER');
  assert.equal(request.parentSpanId, undefined);
  assert.deepEqual(request.status, { code: 'UNSET' });
});

test('otel - waitForSpans names the spans that did arrive when the predicate never holds', async () => {
  await assert.rejects(
    collector.waitForSpans((all) => all.some((s) => s.name === 'never-sent'), 300),
    /timed out waiting for spans at the collector[\s\S]*otel-test\/verdict/,
  );
});

test('otel - parsing ignores a line the exporter has not finished writing', () => {
  const line = JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'svc' } }] },
        scopeSpans: [
          {
            spans: [
              {
                traceId: '0af7651916cd43dd8448eb211c80319c',
                spanId: 'b7ad6b7169203331',
                parentSpanId: '',
                name: 'op',
                kind: 3,
                startTimeUnixNano: '1',
                endTimeUnixNano: '2',
                attributes: [{ key: 'big', value: { intValue: '9007199254740993' } }],
                status: {},
              },
            ],
          },
        ],
      },
    ],
  });
  const spans = parseOtlpJsonLines(`${line}\n${line.slice(0, 40)}`);
  assert.equal(spans.length, 1);
  assert.deepEqual(spans[0], {
    traceId: '0af7651916cd43dd8448eb211c80319c',
    spanId: 'b7ad6b7169203331',
    name: 'op',
    kind: 'CLIENT',
    serviceName: 'svc',
    status: { code: 'UNSET' },
    attributes: { big: '9007199254740993' },
    resource: { 'service.name': 'svc' },
    startTimeUnixNano: '1',
    endTimeUnixNano: '2',
  });
});
