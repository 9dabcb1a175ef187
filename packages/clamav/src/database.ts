/**
 * What signature database a clamd has: a version that changes whenever any signature changes (the
 * verdict cache is keyed by it, so an update invalidates cached verdicts by construction) and its age
 * (how long since the newest signature was built; readiness refuses a database older than allowed).
 */
import { createHash } from 'node:crypto';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Signed, versioned databases (freshclam's main, daily, bytecode). */
const CVD = /\.(cvd|cld|cud)$/;
/** Plain signature files (hashes, bodies, logical signatures, YARA, ignores, allow lists…). */
const PLAIN =
  /\.(hdb|hsb|hdu|hsu|mdb|msb|mdu|msu|ndb|ndu|ldb|ldu|idb|cdb|cfg|crb|cat|gdb|pdb|wdb|ftm|fp|sfp|ign|ign2|imp|info|yar|yara|pwdb|cbc)$/;

export interface DatabaseFile {
  name: string;
  size: number;
  /** freshclam databases: the version in the header (e.g. daily 27412). */
  version?: number;
  /** When the file's signatures were built: the header's time for freshclam databases, else mtime. */
  builtAt: Date;
}

export interface SignatureDatabase {
  /** e.g. "daily-27412.main-62.bytecode-335" or "custom-3fa2c1d09b7e" plus a hash of plain files. */
  version: string;
  /** The newest signature's build time. */
  builtAt: Date;
  files: DatabaseFile[];
  /** Cheap identity of the directory's state (names, sizes, mtimes) for change detection. */
  fingerprint: string;
}

export class SignatureDatabaseError extends Error {
  override name = 'SignatureDatabaseError';
}

/** Reads a freshclam database header: "ClamAV-VDB:<date>:<version>:<sigs>:<flevel>:<md5>:<dsig>:<builder>:<stime>". */
async function cvdHeader(path: string): Promise<{ version: number; builtAt: Date } | undefined> {
  const handle = await open(path, 'r');
  try {
    const header = Buffer.alloc(512);
    await handle.read(header, 0, 512, 0);
    const fields = header.toString('latin1').replace(/\0.*$/s, '').trim().split(':');
    if (fields[0] !== 'ClamAV-VDB') return undefined;
    const version = Number(fields[2]);
    const stime = Number(fields[8]);
    if (!Number.isInteger(version)) return undefined;
    return { version, builtAt: new Date(Number.isFinite(stime) && stime > 0 ? stime * 1000 : 0) };
  } finally {
    await handle.close();
  }
}

/** Lists the database directory cheaply (no content read): the basis for change detection. */
export async function databaseFingerprint(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => CVD.test(n) || PLAIN.test(n)).sort();
  const parts = await Promise.all(
    names.map(async (name) => {
      const s = await stat(join(dir, name));
      return `${name}:${s.size}:${s.mtimeMs}`;
    }),
  );
  return parts.join('|');
}

/** Reads the database in `dir`. Throws when there is none (clamd would not start either). */
export async function readSignatureDatabase(dir: string): Promise<SignatureDatabase> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => CVD.test(n) || PLAIN.test(n)).sort();
  } catch (err) {
    throw new SignatureDatabaseError(`cannot read the signature directory ${dir}: ${(err as Error).message}`);
  }
  if (names.length === 0) {
    throw new SignatureDatabaseError(
      `no signatures in ${dir}: run freshclam, or for tests and the lab write the project's test database (moat signatures ${dir})`,
    );
  }
  const plainHash = createHash('sha256');
  const versions: string[] = [];
  const files: DatabaseFile[] = [];
  for (const name of names) {
    const path = join(dir, name);
    const s = await stat(path);
    if (CVD.test(name)) {
      const header = await cvdHeader(path);
      if (!header) throw new SignatureDatabaseError(`${path} is not a ClamAV database (bad header)`);
      versions.push(`${name.replace(CVD, '')}-${header.version}`);
      files.push({ name, size: s.size, version: header.version, builtAt: header.builtAt });
    } else {
      plainHash
        .update(`${name}\0`)
        .update(await readFile(path))
        .update('\0');
      files.push({ name, size: s.size, builtAt: s.mtime });
    }
  }
  const hasPlain = files.some((f) => f.version === undefined);
  const version = [...versions, ...(hasPlain ? [`custom-${plainHash.digest('hex').slice(0, 12)}`] : [])].join(
    '.',
  );
  const builtAt = new Date(Math.max(...files.map((f) => f.builtAt.getTime())));
  return { version, builtAt, files, fingerprint: await databaseFingerprint(dir) };
}

/**
 * When the database was built, for ordering databases across workers: the newest freshclam
 * database's own build time when there is one (a plain file's time is only when this pod wrote it,
 * so a pod with an older daily but freshly written custom files must not count as newer), else the
 * newest plain file's.
 */
export function announceBuildTime(database: SignatureDatabase): Date {
  const official = database.files.filter((f) => f.version !== undefined).map((f) => f.builtAt.getTime());
  return official.length ? new Date(Math.max(...official)) : database.builtAt;
}
