export { bool, byteSize, commaList, duration, port, url } from './fields.js';
export { ConfigError, type ConfigIssue, type LoadConfigOptions, loadConfig } from './load.js';
export { redactUrl } from './redact.js';
