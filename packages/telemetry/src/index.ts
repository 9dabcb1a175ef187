export { attr, type MoatAttribute } from './attributes.js';
export {
  contextFromGrpcMetadata,
  contextFromNatsHeaders,
  type GrpcMetadataLike,
  injectIntoGrpcMetadata,
  injectIntoNatsHeaders,
  type NatsHeadersLike,
} from './propagation.js';
export { spansRecorded, startTelemetry, type Telemetry, type TelemetryOptions } from './sdk.js';
export { activeTraceId, getTracer, withSpan } from './spans.js';
