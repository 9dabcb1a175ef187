/**
 * Writes the project's test signature database (EICAR plus custom hash and body signatures) into a
 * directory, for a clamd without freshclam: the lab, CI, an offline cluster (the chart's
 * avScanner.signatures.source=test). Usage: node dist/test-signatures-main.js <dir> [--json]
 */
import { readSignatureDatabase, writeTestSignatures } from '@moat/clamav';

const args = process.argv.slice(2);
const dir = args.find((a) => !a.startsWith('-'));
if (args.includes('--help') || args.includes('-h') || !dir) {
  console.log(
    'usage: test-signatures-main.js <dir> [--json]\n\nWrites the test signature database (EICAR plus custom hash and body signatures) into <dir>.\nProduction clamd uses freshclam instead.',
  );
  process.exit(dir || args.includes('--help') || args.includes('-h') ? 0 : 2);
}
try {
  const files = writeTestSignatures(dir);
  const database = await readSignatureDatabase(dir);
  if (args.includes('--json')) console.log(JSON.stringify({ dir, files, version: database.version }));
  else console.log(`wrote the test signature database ${database.version} to ${dir}: ${files.join(', ')}`);
} catch (err) {
  console.error(`cannot write the test signatures to ${dir}: ${(err as Error).message}`);
  process.exit(1);
}
