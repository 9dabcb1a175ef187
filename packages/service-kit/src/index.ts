export { type BaseConfig, baseConfigSchema, loadServiceConfig } from './config.js';
export {
  createHealthServer,
  type HealthServer,
  type MetricsSource,
  type ReadinessCheck,
} from './health.js';
export { type ServiceKit, type ServiceKitOptions, startServiceKit } from './kit.js';
export { QueryArgumentError, type QueryHandler, type QueryReply, serveQueries } from './query.js';
export { every, type Serial, serialQueue } from './serial.js';
export { installShutdown, runShutdownSteps, type ShutdownStep } from './shutdown.js';
export { type ServiceStatus, serveStatus } from './status.js';
export { runTool, ToolError, type ToolOptions } from './tool.js';
export {
  isWorkerProcess,
  type Supervisor,
  type SupervisorOptions,
  serveSupervisor,
  signalWorkers,
  superviseWorkers,
  workerIndex,
} from './workers.js';
