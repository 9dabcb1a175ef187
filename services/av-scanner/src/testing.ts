/**
 * The real av-scanner worker as a child process beside a test clamd, for tests here and in other
 * services (the proxy's antivirus tests): `@moat/av-scanner/testing`.
 */
import { fileURLToPath } from 'node:url';
import { freePort, type ManagedProcess, startProcess, waitFor } from '@moat/testkit';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

export interface AvScannerProcess {
  name: string;
  proc: ManagedProcess;
  httpPort: number;
  stop(): Promise<void>;
}

export interface StartAvScannerOptions {
  natsUrl: string;
  redisUrl: string;
  /** The clamd it scans with and the signature directory that clamd loads. */
  clamd: { address: string; databaseDirectory: string };
  /** Its MOAT_INSTANCE_ID and process name (default av-scanner-test). */
  name?: string;
  env?: Record<string, string>;
  /** Wait for /readyz (default true). */
  waitReady?: boolean;
}

export async function startAvScanner(opts: StartAvScannerOptions): Promise<AvScannerProcess> {
  const name = opts.name ?? 'av-scanner-test';
  const httpPort = await freePort();
  const proc = startProcess(name, process.execPath, [MAIN], {
    env: {
      ...process.env,
      MOAT_NATS_URL: opts.natsUrl,
      MOAT_REDIS_URL: opts.redisUrl,
      MOAT_LOG_LEVEL: 'warn',
      MOAT_INSTANCE_ID: name,
      MOAT_AV_SCANNER_HTTP_PORT: String(httpPort),
      MOAT_AV_SCANNER_CLAMD_ADDRESS: opts.clamd.address,
      MOAT_AV_SCANNER_SIGNATURE_DIR: opts.clamd.databaseDirectory,
      ...opts.env,
    },
  });
  if (opts.waitReady ?? true)
    await waitFor(`${name} /readyz`, async () => (await fetch(`http://127.0.0.1:${httpPort}/readyz`)).ok, {
      proc,
      timeoutMs: 20_000,
    });
  return { name, proc, httpPort, stop: () => proc.stop() };
}
