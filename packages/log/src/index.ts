export { createLogger, type Logger, type LoggerOptions } from './logger.js';
export {
  type EventEngine,
  eventEngines,
  type EventInput,
  type MoatEvent,
  makeEvent,
  moatEventSchema,
  type Endpoint,
} from './events.js';
