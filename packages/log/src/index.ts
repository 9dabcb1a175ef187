export {
  type Endpoint,
  type EventEngine,
  type EventInput,
  eventEngines,
  type MoatEvent,
  makeEvent,
  makeEventUnchecked,
  moatEventSchema,
} from './events.js';
export { createLogger, type Logger, type LoggerOptions } from './logger.js';
