/**
 * Prepares a clamd to run beside this worker outside Kubernetes (`moat lab`, `moat dev`): writes
 * <dir>/clamd.conf and, when <dir>/db holds no signatures yet, the project's test database there.
 * Usage: node dist/clamd-config-main.js <dir> <listen: host:port | /path.sock> [stream-max-bytes]
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseClamdAddress, renderClamdConfig, writeTestSignatures } from '@moat/clamav';

const [dir, listen, streamMax] = process.argv.slice(2);
if (!dir || !listen || process.argv.includes('--help')) {
  console.log(
    'usage: clamd-config-main.js <dir> <host:port | /path/clamd.sock> [stream-max-bytes]\n\nWrites <dir>/clamd.conf, and the test signature database into <dir>/db when it has none.',
  );
  process.exit(dir && listen ? 0 : 2);
}
try {
  const databaseDirectory = join(dir, 'db');
  mkdirSync(databaseDirectory, { recursive: true });
  if (readdirSync(databaseDirectory).length === 0) writeTestSignatures(databaseDirectory);
  const conf = join(dir, 'clamd.conf');
  writeFileSync(
    conf,
    renderClamdConfig({
      listen: parseClamdAddress(listen),
      databaseDirectory,
      streamMaxLength: streamMax ? Number(streamMax) : 64 * 2 ** 20,
      selfCheckSeconds: 60,
      pidFile: join(dir, 'clamd.pid'),
    }),
  );
  console.log(
    `clamd config ${conf} (signatures in ${databaseDirectory}${existsSync(databaseDirectory) ? '' : ', missing'})`,
  );
} catch (err) {
  console.error(`cannot prepare clamd in ${dir}: ${(err as Error).message}`);
  process.exit(1);
}
