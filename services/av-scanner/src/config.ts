import { type ClamdAddress, parseClamdAddress } from '@moat/clamav';
import { port } from '@moat/config';
import { baseConfigSchema, loadServiceConfig } from '@moat/service-kit';
import { z } from 'zod';

/** Every MOAT_AV_SCANNER_* setting. */
export const avScannerConfigSchema = baseConfigSchema.extend({
  /** Health, readiness and metrics. */
  httpPort: port().default(9407),
  /** clamd beside this worker: a unix socket path or host:port (clamd's TCPSocket). */
  clamdAddress: z
    .string()
    .default('/run/clamav/clamd.ctl')
    .transform((value, ctx): ClamdAddress => {
      try {
        return parseClamdAddress(value);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  /** clamd's DatabaseDirectory (read for the signature version and age; freshclam writes it). */
  signatureDir: z.string().default('/var/lib/clamav'),
  /** Jobs scanned at once by this worker (clamd's MaxThreads should be at least this). */
  concurrency: z.coerce.number().int().min(1).max(64).default(4),
  /** Not ready when the newest signature is older than this (freshclam stopped updating). */
  maxSignatureAgeHours: z.coerce
    .number()
    .min(0.01)
    .max(24 * 365)
    .default(72),
  /** Seconds between checks for a changed signature database (then clamd reloads). */
  signatureCheckSeconds: z.coerce.number().min(0.2).max(3600).default(30),
  /** Longest one clamd scan may take. */
  scanTimeoutMs: z.coerce.number().int().min(100).max(600_000).default(60_000),
});
export type AvScannerConfig = z.infer<typeof avScannerConfigSchema>;

export const loadAvScannerConfig = (env = process.env): AvScannerConfig =>
  loadServiceConfig('av-scanner', avScannerConfigSchema, env) as AvScannerConfig;
