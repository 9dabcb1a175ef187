/** Test harness: Debian's clamd with the project's test database, on a unix socket in a temp dir. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ManagedProcess, startProcess, waitFor } from '@moat/testkit';
import { ClamdClient } from './client.js';
import { renderClamdConfig } from './config.js';
import { writeTestSignatures } from './signatures.js';

export interface TestClamd {
  /** "unix:/tmp/moat-clamd-…/clamd.sock" */
  address: string;
  socket: string;
  databaseDirectory: string;
  client: ClamdClient;
  /** Stops clamd (SIGTERM); `start` brings it back with the same socket and database. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** SIGSTOP: clamd accepts connections but answers nothing (a hung engine); thaw() resumes it. */
  freeze(): void;
  thaw(): void;
  /** Stops clamd and removes its directory. */
  dispose(): Promise<void>;
}

const CLAMD = process.env.MOAT_CLAMD_BIN ?? '/usr/sbin/clamd';

export async function startClamd(
  opts: {
    streamMaxLength?: number;
    /** Signature files instead of the test database (name → content), e.g. one without EICAR. */
    signatures?: Record<string, string>;
  } = {},
): Promise<TestClamd> {
  const dir = mkdtempSync(join(tmpdir(), 'moat-clamd-'));
  const databaseDirectory = join(dir, 'db');
  if (opts.signatures) {
    mkdirSync(databaseDirectory, { recursive: true });
    for (const [name, content] of Object.entries(opts.signatures))
      writeFileSync(join(databaseDirectory, name), content);
  } else writeTestSignatures(databaseDirectory);
  const socket = join(dir, 'clamd.sock');
  const conf = join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    renderClamdConfig({
      listen: { path: socket },
      databaseDirectory,
      streamMaxLength: opts.streamMaxLength ?? 64 * 2 ** 20,
      selfCheckSeconds: 5,
    }),
  );
  const client = new ClamdClient({ path: socket });
  let proc: ManagedProcess | undefined;
  const start = async () => {
    proc = startProcess('clamd', CLAMD, ['-c', conf]);
    await waitFor(
      `clamd on ${socket}`,
      () =>
        client.ping(500).then(
          () => true,
          () => false,
        ),
      { proc, timeoutMs: 30_000 },
    );
  };
  await start();
  return {
    address: `unix:${socket}`,
    socket,
    databaseDirectory,
    client,
    start,
    freeze: () => void proc?.child.kill('SIGSTOP'),
    thaw: () => void proc?.child.kill('SIGCONT'),
    stop: async () => {
      await proc?.stop();
      rmSync(socket, { force: true });
    },
    dispose: async () => {
      await proc?.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
