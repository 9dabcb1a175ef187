import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Metadata } from '@grpc/grpc-js';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import {
  activeTraceId,
  attr,
  contextFromGrpcMetadata,
  contextFromNatsHeaders,
  injectIntoGrpcMetadata,
  injectIntoNatsHeaders,
  startTelemetry,
  type Telemetry,
  withSpan,
} from './index.js';

// A real OTLP/HTTP receiver: counts export requests and keeps their raw bodies.
const received: Buffer[] = [];
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/v1/traces') received.push(Buffer.concat(chunks));
    res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
  });
});
const memory = new InMemorySpanExporter();
const processor = new SimpleSpanProcessor({ exporter: memory });
/** The simple processor exports asynchronously; wait for it before reading the spans. */
const finishedSpans = async () => {
  await processor.forceFlush();
  return memory.getFinishedSpans();
};
let telemetry: Telemetry;

before(async () => {
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const { port } = receiver.address() as AddressInfo;
  telemetry = startTelemetry({
    serviceName: 'telemetry-test',
    spanProcessors: [processor],
    env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` },
  });
});
after(async () => {
  await telemetry.shutdown();
  receiver.closeAllConnections();
  receiver.close();
});

test('telemetry - trace context crosses NATS headers and gRPC metadata', async () => {
  let producerTrace = '';
  const nh = natsHeaders();
  const md = new Metadata();
  await withSpan('producer', {}, () => {
    producerTrace = activeTraceId() ?? '';
    injectIntoNatsHeaders(nh);
    injectIntoGrpcMetadata(md);
  });
  assert.match(producerTrace, /^[0-9a-f]{32}$/);
  assert.match(nh.get('traceparent'), new RegExp(`^00-${producerTrace}-[0-9a-f]{16}-01$`));

  const viaNats = trace.getSpanContext(contextFromNatsHeaders(nh));
  const viaGrpc = trace.getSpanContext(contextFromGrpcMetadata(md));
  assert.equal(viaNats?.traceId, producerTrace);
  assert.equal(viaGrpc?.traceId, producerTrace);

  await withSpan('consumer', { parent: contextFromNatsHeaders(nh) }, () => undefined);
  const consumer = (await finishedSpans()).find((s) => s.name === 'consumer');
  assert.equal(consumer?.spanContext().traceId, producerTrace);
});

test('telemetry - a failing span records the error and still ends', async () => {
  await assert.rejects(
    withSpan('blocked', { attributes: { [attr.verdict]: 'block' } }, () => {
      throw new TypeError('boom');
    }),
    /boom/,
  );
  const span = (await finishedSpans()).find((s) => s.name === 'blocked');
  assert.ok(span);
  assert.equal(span.status.code, 2);
  assert.equal(span.attributes['error.type'], 'TypeError');
  assert.equal(span.attributes[attr.verdict], 'block');
});

test('telemetry - spans are exported over OTLP to the configured endpoint', async () => {
  let id = '';
  await withSpan('exported', {}, () => {
    id = activeTraceId() ?? '';
  });
  await telemetry.shutdown(); // flushes the batch processor
  assert.ok(telemetry.exporting);
  const all = Buffer.concat(received);
  assert.ok(all.includes(Buffer.from(id, 'hex')), 'the exported protobuf carries the trace id');
});
