import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, tcpOpen } from './ports.js';
import { startProcess, waitFor } from './process.js';

export interface NatsServer {
  url: string;
  port: number;
  stop(): Promise<void>;
  /** Stops the server but keeps its JetStream store, so `restart` brings the same state back. */
  restart(): Promise<void>;
}

/** Starts Debian's nats-server with JetStream on a free loopback port. */
export async function startNats(): Promise<NatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'moat-nats-'));
  const launch = async () => {
    const proc = startProcess('nats-server', 'nats-server', [
      '-js',
      '-sd',
      dir,
      '-a',
      '127.0.0.1',
      '-p',
      String(port),
    ]);
    await waitFor(`nats-server on port ${port}`, () => tcpOpen(port), { proc });
    return proc;
  };
  let proc = await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    async restart() {
      await proc.stop();
      proc = await launch();
    },
    async stop() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
