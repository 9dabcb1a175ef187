import type { ClamdAddress } from './address.js';

export interface ClamdConfigOptions {
  listen: ClamdAddress;
  databaseDirectory: string;
  /** Largest stream INSTREAM accepts (bytes); larger ones get "size limit exceeded". */
  streamMaxLength: number;
  maxThreads?: number;
  /** Seconds between clamd's own checks for a changed database (it then reloads). */
  selfCheckSeconds?: number;
  /** clamd's result cache; off for benchmarks of unique content. */
  disableCache?: boolean;
  /** A log file; default: none (clamd's own output, kept by whoever started it). */
  logFile?: string;
  pidFile?: string;
}

/**
 * A clamd.conf for a clamd that runs in the foreground beside the av-scanner. Limits fail closed:
 * content over a scan limit is reported as a detection (Heuristics.Limits.Exceeded), not as clean.
 */
export function renderClamdConfig(opts: ClamdConfigOptions): string {
  const size = opts.streamMaxLength;
  const lines = [
    '# Written by Moat: clamd beside the av-scanner (see packages/clamav/src/config.ts).',
    'Foreground yes',
    `DatabaseDirectory ${opts.databaseDirectory}`,
    ...('path' in opts.listen
      ? [`LocalSocket ${opts.listen.path}`, 'LocalSocketMode 660']
      : [`TCPSocket ${opts.listen.port}`, `TCPAddr ${opts.listen.host}`]),
    `StreamMaxLength ${size}`,
    // archives expand: let the scan limits sit above the stream limit
    `MaxScanSize ${Math.max(size * 4, 100 * 2 ** 20)}`,
    `MaxFileSize ${Math.max(size, 25 * 2 ** 20)}`,
    'MaxRecursion 17',
    'MaxFiles 10000',
    'AlertExceedsMax yes',
    // an archive the scanner cannot open is not "clean": it is reported (Heuristics.Encrypted.*)
    'AlertEncrypted yes',
    `MaxThreads ${opts.maxThreads ?? 4}`,
    `SelfCheck ${opts.selfCheckSeconds ?? 600}`,
    'ConcurrentDatabaseReload yes',
    `DisableCache ${opts.disableCache ? 'yes' : 'no'}`,
    // without a LogFile, clamd in the foreground prints its messages to stdout/stderr (the supervisor keeps them)
    ...(opts.logFile ? [`LogFile ${opts.logFile}`] : []),
    'LogTime yes',
    'LogClean no',
    'LogVerbose no',
    ...(opts.pidFile ? [`PidFile ${opts.pidFile}`] : []),
  ];
  return `${lines.join('\n')}\n`;
}
