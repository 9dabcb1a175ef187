/**
 * @moat/urlfilter: URL categorisation for the web proxy. UT1 / squidGuard list directories and
 * inline lists are packed into compact tables (a few tens of bytes per entry, microsecond
 * lookups at millions of entries) built in a worker thread; policy URL patterns compile to a
 * host-indexed matcher.
 */
export { buildCategorizer } from './build.js';
export { UrlCategorizer, type UrlCategorizerStats } from './categorizer.js';
export { UrlListError, UrlPatternError } from './errors.js';
export { normaliseHost } from './host.js';
export { UrlListManager, type UrlListManagerOptions } from './list-manager.js';
export type { CategorySource } from './sources.js';
export type { ListFileStats } from './table-builder.js';
export { compileUrlPatterns, type RequestUrl, type UrlPatternMatcher } from './url-patterns.js';
