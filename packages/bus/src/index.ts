export { type Bus, type BusOptions, connectBus, type JsonHandler, type JsonMessage } from './bus.js';
export { publishEvent } from './events.js';
export type { ClassStats, FlowTuple, QosClassView, Session, SessionListing } from './queries.js';
export {
  type ConsumerDeclaration,
  consumers,
  ensureConsumers,
  ensureStreams,
  type StreamDeclaration,
  streams,
} from './streams.js';
export { subjects } from './subjects.js';
