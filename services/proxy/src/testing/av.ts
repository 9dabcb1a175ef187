/** The real av-scanner worker beside a test clamd, for the proxy's antivirus tests. */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { TestClamd } from '@moat/clamav/testing';
import { freePort, type ManagedProcess, startProcess, waitFor } from '@moat/testkit';

const require = createRequire(import.meta.url);
const AV_SCANNER_MAIN = join(require.resolve('@moat/av-scanner/package.json'), '..', 'dist', 'main.js');

export interface AvScanner {
  proc: ManagedProcess;
  httpPort: number;
  stop(): Promise<void>;
}

export async function startAvScanner(opts: {
  natsUrl: string;
  redisUrl: string;
  clamd: TestClamd;
  name?: string;
  env?: Record<string, string>;
}): Promise<AvScanner> {
  const httpPort = await freePort();
  const proc = startProcess(opts.name ?? 'av-scanner', process.execPath, [AV_SCANNER_MAIN], {
    env: {
      ...process.env,
      MOAT_NATS_URL: opts.natsUrl,
      MOAT_REDIS_URL: opts.redisUrl,
      MOAT_LOG_LEVEL: 'warn',
      MOAT_INSTANCE_ID: opts.name ?? 'av-scanner-test',
      MOAT_AV_SCANNER_HTTP_PORT: String(httpPort),
      MOAT_AV_SCANNER_CLAMD_ADDRESS: opts.clamd.address,
      MOAT_AV_SCANNER_SIGNATURE_DIR: opts.clamd.databaseDirectory,
      ...opts.env,
    },
  });
  await waitFor('av-scanner ready', async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok, {
    proc,
    timeoutMs: 20_000,
  });
  return { proc, httpPort, stop: () => proc.stop() };
}
