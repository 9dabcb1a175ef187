import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { createLogger, type MoatEvent } from '@moat/log';
import { activeTraceId, startTelemetry, type Telemetry, withSpan } from '@moat/telemetry';
import { type NatsServer, startNats } from '@moat/testkit';
import { jetstream } from '@nats-io/jetstream';
import { trace } from '@opentelemetry/api';
import {
  type Bus,
  connectBus,
  consumers,
  ensureConsumers,
  ensureStreams,
  publishEvent,
  streams,
  subjects,
} from './index.js';

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

test('bus - the shared av-scanner consumer is declared idempotently and hands each job to one worker', async () => {
  const jsm = await bus.jetstreamManager();
  await ensureStreams(jsm, Object.values(streams));
  await ensureConsumers(jsm, Object.values(consumers));
  await ensureConsumers(jsm, Object.values(consumers));
  const info = await jsm.consumers.info(streams.scan.name, 'av-scanner');
  assert.equal(info.config.ack_policy, 'explicit');
  assert.equal(info.config.filter_subject, subjects.scanRequest);

  const js = jetstream(bus.nc);
  for (let i = 0; i < 4; i++) await js.publish(subjects.scanRequest, JSON.stringify({ job: i }));
  const [a, b] = [
    await js.consumers.get(streams.scan.name, 'av-scanner'),
    await js.consumers.get(streams.scan.name, 'av-scanner'),
  ];
  const taken: number[] = [];
  for (const worker of [a, b, a, b]) {
    const m = await worker.next({ expires: 2000 });
    assert.ok(m, 'a job is available');
    taken.push((m.json() as { job: number }).job);
    m.ack();
  }
  assert.deepEqual(taken.sort(), [0, 1, 2, 3]);
  // Work-queue retention: acknowledged jobs are gone from the stream.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await jsm.streams.info(streams.scan.name)).state.messages, 0);
});
