export { ConfigError, type ConfigIssue, loadConfig, type LoadConfigOptions } from './load.js';
export { commaList, duration, port, url } from './fields.js';
