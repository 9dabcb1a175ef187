export { type CommandOptions, type CommandResult, runCommand } from './command.js';
export { type NatsServer, startNats } from './nats.js';
export {
  type AttributeValue,
  type CollectedSpan,
  type OtelCollector,
  parseOtlpJsonLines,
  startOtelCollector,
} from './otel.js';
export { freePort, tcpOpen } from './ports.js';
export { type ManagedProcess, startProcess, waitFor } from './process.js';
export { type RedisServer, startRedis } from './redis.js';
