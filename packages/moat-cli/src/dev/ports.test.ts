import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SERVICES } from '../services.js';
import { FAKE_SERVICE } from '../testing/fake-registry.js';
import { allPorts, planDevPorts } from './ports.js';

test('dev ports - defaults are the well-known ports', () => {
  const ports = planDevPorts(SERVICES);
  assert.equal(ports.nats, 4222);
  assert.equal(ports.natsMonitor, 8222);
  assert.equal(ports.redis, 6379);
  assert.deepEqual(ports.services.control, { grpc: 50051, http: 9401 });
});

test('dev ports - a base port allocates every port in sequence, without collisions', () => {
  const ports = planDevPorts([...SERVICES, FAKE_SERVICE], 30000);
  assert.deepEqual(
    { nats: ports.nats, natsMonitor: ports.natsMonitor, redis: ports.redis },
    { nats: 30000, natsMonitor: 30001, redis: 30002 },
  );
  assert.deepEqual(ports.services.control, { http: 30003, grpc: 30004 });
  assert.deepEqual(ports.services.proxy, { http: 30006, proxy: 30007 });
  // the firewall and qos are lab-only, but keep their places so ports do not move with the selection
  assert.deepEqual(ports.services.firewall, { http: 30009 });
  assert.deepEqual(ports.services.qos, { http: 30012 });
  assert.deepEqual(ports.services['tls-mediation'], { http: 30015, grpc: 30016, ca: 30017 });
  assert.deepEqual(ports.services['av-scanner'], { http: 30018, clamd: 30019 });
  assert.deepEqual(ports.services.fake, { http: 30021 });
  const numbers = allPorts(ports).map((p) => p.port);
  assert.equal(new Set(numbers).size, numbers.length);
});
