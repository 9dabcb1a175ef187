/**
 * The scan contract between the proxy and av-scanner workers.
 *
 * A job is one message on `scan.request` (the MOAT_SCAN work queue). Its metadata rides in headers
 * (beside the W3C trace context); its data is the content itself when that is small, or empty when
 * the content waits in the MOAT_SCAN_BODIES object store under the job id. The verdict goes back, as
 * JSON, to the core-NATS subject in `Moat-Reply-To`; the worker acks the job only after publishing it.
 */
import { z } from 'zod';

export const SCAN_HEADER = {
  id: 'Moat-Scan-Id',
  replyTo: 'Moat-Reply-To',
  /** Hex SHA-256 of the whole content (the verdict cache key, and an integrity check). */
  sha256: 'Moat-Scan-Sha256',
  size: 'Moat-Scan-Size',
  /** Present when the content is in the object store (value: the object name). */
  object: 'Moat-Scan-Object',
  /** Epoch milliseconds after which nobody waits for the verdict: the worker drops the job. */
  deadline: 'Moat-Scan-Deadline',
  /** For events and logs: what was scanned (redacted URL) and which way it travelled. */
  url: 'Moat-Scan-Url',
  direction: 'Moat-Scan-Direction',
  /** The signature version under which the proxy already found no cached verdict. */
  cacheMissed: 'Moat-Scan-Cache-Missed',
} as const;

/** Jobs' content above this size goes through the object store (NATS' default max_payload is 1 MiB). */
export const DEFAULT_INLINE_LIMIT = 512 * 1024;

/** The object-store bucket for large content; objects are deleted after the verdict, and expire anyway. */
export const SCAN_BODIES_BUCKET = 'moat-scan-bodies';
/** Abandoned objects (a proxy that died mid-scan) are gone after this long. */
export const SCAN_BODIES_TTL_MS = 10 * 60 * 1000;

export type ScanDirection = 'download' | 'upload';

export const scanVerdictSchema = z.object({
  id: z.string(),
  result: z.enum(['clean', 'infected', 'error']),
  /** Detected signature (infected). */
  signature: z.string().optional(),
  /** Why no verdict could be reached (error). */
  reason: z.string().optional(),
  /**
   * error: unavailable = no scanner answered (an outage: alert), unscannable = a scanner looked and
   * could not decide about this content (over clamd's limits, a broken file).
   */
  errorKind: z.enum(['unavailable', 'unscannable']).optional(),
  /** Answered from the verdict cache, without a scan. */
  cached: z.boolean(),
  /** The signature database the verdict was reached with. */
  signatureVersion: z.string().optional(),
  /** Which worker instance answered ("proxy" for a cache hit found by the proxy itself). */
  worker: z.string(),
  scanMs: z.number().nonnegative(),
});
export type ScanVerdict = z.infer<typeof scanVerdictSchema>;

/** The metadata of a job, as the worker reads it from the headers. */
export interface ScanJobMeta {
  id: string;
  replyTo: string;
  sha256: string;
  size: number;
  object?: string;
  deadline: number;
  url?: string;
  direction: ScanDirection;
  /** The proxy found no cached verdict under this signature version. */
  cacheMissed?: string;
}

export class ScanJobError extends Error {
  override name = 'ScanJobError';
}

interface HeaderReader {
  get(key: string): string;
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Reads and checks a job's headers; throws ScanJobError naming the first bad one. */
export function readJobMeta(h: HeaderReader | undefined): ScanJobMeta {
  if (!h) throw new ScanJobError('the job has no headers');
  const need = (key: string) => {
    const value = h.get(key);
    if (!value) throw new ScanJobError(`the job has no ${key} header`);
    return value;
  };
  const sha256 = need(SCAN_HEADER.sha256);
  if (!HEX64.test(sha256)) throw new ScanJobError(`${SCAN_HEADER.sha256} is not a hex SHA-256`);
  const size = Number(need(SCAN_HEADER.size));
  if (!Number.isSafeInteger(size) || size < 0) throw new ScanJobError(`${SCAN_HEADER.size} is not a size`);
  const deadline = Number(need(SCAN_HEADER.deadline));
  if (!Number.isFinite(deadline)) throw new ScanJobError(`${SCAN_HEADER.deadline} is not a time`);
  const replyTo = need(SCAN_HEADER.replyTo);
  // verdicts go to a proxy's inbox, never to an arbitrary subject (events, policy, other jobs)
  if (!/^_INBOX\.[A-Za-z0-9_.-]+$/.test(replyTo))
    throw new ScanJobError(`${SCAN_HEADER.replyTo} must be an _INBOX subject`);
  const direction = h.get(SCAN_HEADER.direction) === 'upload' ? 'upload' : 'download';
  const object = h.get(SCAN_HEADER.object);
  const url = h.get(SCAN_HEADER.url);
  const cacheMissed = h.get(SCAN_HEADER.cacheMissed);
  return {
    id: need(SCAN_HEADER.id),
    replyTo,
    sha256,
    size,
    deadline,
    direction,
    ...(object ? { object } : {}),
    ...(url ? { url } : {}),
    ...(cacheMissed ? { cacheMissed } : {}),
  };
}
