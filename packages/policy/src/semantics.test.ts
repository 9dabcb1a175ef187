import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Schedule } from './schema/objects.js';
import {
  addressInRanges,
  expandAddresses,
  expandServices,
  isScheduleActive,
  qosClassIds,
  servicesCover,
} from './semantics.js';
import { loadExamplePolicy } from './testing.js';

const { policy } = loadExamplePolicy('demo');

describe('policy semantics', () => {
  test('addresses - nested sets expand to every member range', () => {
    const internal = expandAddresses(policy, ['internal']);
    assert.equal(internal.any, false);
    assert.ok(addressInRanges('10.70.1.10', internal.ranges));
    assert.ok(addressInRanges('::ffff:10.70.9.3', internal.ranges), 'dual-stack form of an IPv4 peer');
    assert.ok(addressInRanges('fd00:70:1::10', internal.ranges));
    assert.equal(addressInRanges('10.70.2.1', internal.ranges), false);
    assert.equal(addressInRanges('not-an-ip', internal.ranges), false);
    assert.equal(expandAddresses(policy, ['any']).any, true);
  });

  test('services - predefined sets expand, ports are covered by range', () => {
    const web = expandServices(policy, ['web']);
    assert.ok(servicesCover(web, 'tcp', 80));
    assert.ok(servicesCover(web, 'tcp', 443));
    assert.equal(servicesCover(web, 'tcp', 8080), false);
    assert.equal(servicesCover(web, 'udp', 443), false);
    assert.equal(expandServices(policy, ['any']), undefined);
    assert.ok(servicesCover(undefined, 'tcp', 1), '"any" covers everything');
  });

  test('schedules - windows by day and time, overnight windows and time zones', () => {
    const office: Schedule = {
      timezone: 'UTC',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:00' }],
    };
    assert.ok(isScheduleActive(office, new Date('2026-11-23T09:00:00Z')), 'Monday 09:00');
    assert.equal(isScheduleActive(office, new Date('2026-11-23T18:00:00Z')), false, 'end is exclusive');
    assert.equal(isScheduleActive(office, new Date('2026-11-22T09:00:00Z')), false, 'Sunday');

    const night: Schedule = { timezone: 'UTC', windows: [{ days: ['fri'], start: '22:00', end: '06:00' }] };
    assert.ok(isScheduleActive(night, new Date('2026-11-27T23:00:00Z')), 'Friday night');
    assert.ok(
      isScheduleActive(night, new Date('2026-11-28T05:59:00Z')),
      'Saturday morning belongs to Friday',
    );
    assert.equal(isScheduleActive(night, new Date('2026-11-26T23:00:00Z')), false, 'Thursday night');

    const everyDay = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as Schedule['windows'][number]['days'];
    const paris: Schedule = {
      timezone: 'Europe/Paris',
      windows: [{ days: everyDay, start: '00:00', end: '01:00' }],
    };
    assert.ok(isScheduleActive(paris, new Date('2026-11-22T23:30:00Z')), '00:30 in Paris (UTC+1)');
    assert.equal(isScheduleActive(paris, new Date('2026-11-23T00:30:00Z')), false, '01:30 in Paris');
  });
});

test('semantics - QoS class ids come from the class names: adding a class moves no other class', () => {
  const withClasses = (...names: string[]) =>
    ({
      qos: { interfaces: {}, classes: Object.fromEntries(names.map((n) => [n, { rate: 1e6, priority: 4 }])) },
    }) as unknown as Parameters<typeof qosClassIds>[0];
  const before = qosClassIds(withClasses('bulk', 'interactive'));
  const after = qosClassIds(withClasses('a-first', 'bulk', 'interactive', 'voice'));
  assert.equal(after.get('bulk'), before.get('bulk'));
  assert.equal(after.get('interactive'), before.get('interactive'));
  const ids = [...after.values()];
  assert.equal(new Set(ids).size, ids.length, 'distinct');
  assert.ok(
    ids.every((id) => id >= 0x10 && id <= 0xfffe),
    ids.map((id) => id.toString(16)).join(' '),
  );
  // many classes still get distinct ids (collisions move to the next free id)
  const many = qosClassIds(withClasses(...Array.from({ length: 500 }, (_, i) => `class-${i}`)));
  assert.equal(new Set(many.values()).size, 500);
});
