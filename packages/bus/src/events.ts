import { type EventInput, type MoatEvent, makeEvent, makeEventUnchecked } from '@moat/log';
import type { Bus } from './bus.js';
import { subjects } from './subjects.js';

/**
 * Validates, stamps and publishes an event on `events.<engine>.<action>`; returns it for logging.
 * `validate: false` skips the schema check on hot paths (see makeEventUnchecked).
 */
export function publishEvent(bus: Bus, input: EventInput, opts: { validate?: boolean } = {}): MoatEvent {
  const event = opts.validate === false ? makeEventUnchecked(input) : makeEvent(input);
  bus.publish(subjects.event(event.engine, event.action), event);
  return event;
}
