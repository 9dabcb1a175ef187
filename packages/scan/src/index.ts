export {
  ANNOUNCE_EVERY_MS,
  type CachedVerdict,
  type CacheRedis,
  CURRENT_VERSION_KEY,
  VerdictCache,
} from './cache.js';
export { openBodiesStore, ScanClient, type ScanClientOptions, type ScanRequest } from './client.js';
export {
  DEFAULT_INLINE_LIMIT,
  readJobMeta,
  SCAN_BODIES_BUCKET,
  SCAN_BODIES_TTL_MS,
  SCAN_HEADER,
  type ScanDirection,
  ScanJobError,
  type ScanJobMeta,
  type ScanVerdict,
  scanVerdictSchema,
} from './contract.js';
export { ensureScanQueue, SCAN_CONSUMER, SCAN_STREAM, SCAN_SUBJECT } from './queue.js';
