/**
 * The trace of a blocked request, received by a real OpenTelemetry Collector over OTLP
 * (http/protobuf): the server span carries the verdict, the engine, the rule and the category,
 * with error status, and the policy decision is its child.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type OtelCollector, startOtelCollector } from '@moat/testkit';
import {
  type Origin,
  type ProxyHarness,
  startOrigin,
  startProxyHarness,
  viaProxy,
} from './testing/harness.js';

const POLICY = `
apiVersion: moat/v1
kind: Policy
metadata: { name: trace-test }
objects:
  urlCategories:
    gambling: { domains: [casino.test] }
profiles:
  webFiltering:
    wf: { blockCategories: [gambling] }
utmPolicies:
  web: { http: { webFiltering: wf } }
securityRules:
  - { name: clients-web, fromZones: any, toZones: any, source: any, destination: any, service: any, action: permit, utmPolicy: web }
`;

describe('tracing', () => {
  let collector: OtelCollector;
  let origin: Origin;
  let h: ProxyHarness;
  before(async () => {
    collector = await startOtelCollector();
    origin = await startOrigin();
    h = await startProxyHarness({
      policy: POLICY,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_BSP_SCHEDULE_DELAY: '200' },
    });
  });
  after(async () => {
    await h?.stop();
    await origin?.close();
    await collector?.stop();
  });

  test('tracing - a blocked request arrives at the collector as one trace with the block attributes', async () => {
    const blocked = await viaProxy(h.proxyPort, 'http://casino.test/page');
    assert.equal(blocked.status, 403);
    assert.match(blocked.traceId, /^[0-9a-f]{32}$/);
    const spans = await collector.waitForSpans(
      (all) => all.filter((s) => s.traceId === blocked.traceId).length >= 2,
      15_000,
    );
    const trace = spans.filter((s) => s.traceId === blocked.traceId);
    const server = trace.find((s) => s.kind === 'SERVER');
    assert.ok(server, `a server span; got ${trace.map((s) => s.name).join(', ')}`);
    assert.equal(server.serviceName, 'proxy');
    assert.equal(server.status.code, 'ERROR');
    assert.equal(server.attributes['moat.verdict'], 'block');
    assert.equal(server.attributes['moat.engine'], 'web-filter');
    assert.equal(server.attributes['moat.rule_id'], 'clients-web');
    assert.equal(server.attributes['moat.category'], 'gambling');
    assert.equal(server.attributes['http.response.status_code'], 403);
    assert.equal(server.attributes['url.full'], 'http://casino.test/page');
    const decision = trace.find((s) => s.name === 'policy.decide');
    assert.equal(decision?.parentSpanId, server.spanId, 'the decision is a child of the request');
    assert.equal(decision?.attributes['moat.category'], 'gambling');
  });

  test('tracing - an allowed request has the upstream fetch as a client span in the same trace', async () => {
    const allowed = await viaProxy(h.proxyPort, `http://127.0.0.1:${origin.port}/`);
    assert.equal(allowed.status, 200);
    const spans = await collector.waitForSpans(
      (all) => all.some((s) => s.traceId === allowed.traceId && s.kind === 'CLIENT'),
      15_000,
    );
    const trace = spans.filter((s) => s.traceId === allowed.traceId);
    const server = trace.find((s) => s.kind === 'SERVER');
    const client = trace.find((s) => s.kind === 'CLIENT');
    assert.equal(server?.status.code, 'UNSET');
    assert.equal(server?.attributes['moat.verdict'], 'allow');
    assert.equal(client?.parentSpanId, server?.spanId);
    assert.equal(client?.attributes['http.response.status_code'], 200);
  });
});
