import { type EventInput, type MoatEvent, makeEvent } from '@moat/log';
import type { Bus } from './bus.js';
import { subjects } from './subjects.js';

/** Validates, stamps and publishes an event on `events.<engine>.<action>`; returns it for logging. */
export function publishEvent(bus: Bus, input: EventInput): MoatEvent {
  const event = makeEvent(input);
  bus.publish(subjects.event(event.engine, event.action), event);
  return event;
}
