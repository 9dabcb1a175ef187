import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger, type MoatEvent } from '@moat/log';
import { activeTraceId, startTelemetry, type Telemetry, withSpan } from '@moat/telemetry';
import { type NatsServer, startNats } from '@moat/testkit';
import { trace } from '@opentelemetry/api';
import { type Bus, connectBus, ensureStreams, publishEvent, streams, subjects } from './index.js';

let nats: NatsServer;
let bus: Bus;
let telemetry: Telemetry;
const log = createLogger({ service: 'bus-test', level: 'silent' });

before(async () => {
  telemetry = startTelemetry({ serviceName: 'bus-test', env: {} });
  nats = await startNats();
  bus = await connectBus({ servers: nats.url, name: 'bus-test', log });
});
after(async () => {
  await bus.drain();
  await nats.stop();
  await telemetry.shutdown();
});

test('bus - a request carries the trace context to the responder over real NATS', async () => {
  bus.subscribe<{ n: number }>('t.echo', (m) => {
    m.respond({ n: m.data.n + 1, traceId: trace.getSpanContext(m.context)?.traceId });
  });
  await bus.nc.flush();
  let sent = '';
  const reply = await withSpan('caller', {}, async () => {
    sent = activeTraceId() ?? '';
    return bus.request<{ n: number; traceId: string }>('t.echo', { n: 41 });
  });
  assert.equal(reply.n, 42);
  assert.equal(reply.traceId, sent);
});

test('bus - gather collects a reply from every responder', async () => {
  for (const id of ['a', 'b', 'c']) bus.subscribe('t.all', (m) => m.respond({ id }));
  await bus.nc.flush();
  const replies = await bus.gather<{ id: string }>('t.all', {}, 300);
  assert.deepEqual(replies.map((r) => r.id).sort(), ['a', 'b', 'c']);
});

test('bus - a malformed message does not reach the handler and does not break the subscription', async () => {
  const seen: unknown[] = [];
  bus.subscribe('t.json', (m) => {
    seen.push(m.data);
  });
  bus.nc.publish('t.json', 'not json {');
  bus.publish('t.json', { ok: true });
  await bus.nc.flush();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(seen, [{ ok: true }]);
});

test('bus - streams are declared idempotently and events land in the events stream', async () => {
  const jsm = await bus.jetstreamManager();
  await ensureStreams(jsm, Object.values(streams));
  await ensureStreams(jsm, Object.values(streams));
  const info = await jsm.streams.info(streams.events.name);
  assert.deepEqual(info.config.subjects, ['events.>']);
  const scan = await jsm.streams.info(streams.scan.name);
  assert.equal(scan.config.retention, 'workqueue');

  const event = publishEvent(bus, {
    tag: 'POLICY_APPLIED',
    engine: 'control',
    action: 'applied',
    reason: 'test',
    service: 'bus-test',
  });
  await bus.nc.flush();
  const stored = await jsm.streams.getMessage(streams.events.name, {
    last_by_subj: subjects.event('control', 'applied'),
  });
  assert.ok(stored, 'the event is stored');
  assert.equal((stored.json() as MoatEvent).id, event.id);
});
