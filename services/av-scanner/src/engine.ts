/**
 * What this worker knows about its clamd: is it answering, did the EICAR self-test pass, and which
 * signature database does it scan with. The database directory is watched (cheaply: names, sizes,
 * mtimes); when freshclam or an operator changes it, clamd is told to reload, and only once the
 * reload has settled does the worker switch versions. Meanwhile verdicts are not cached, so no
 * verdict reached with the old signatures is ever stored under the new version.
 */
import {
  type ClamdClient,
  ClamdError,
  databaseFingerprint,
  EICAR,
  readSignatureDatabase,
  type SignatureDatabase,
} from '@moat/clamav';
import type { Logger } from '@moat/log';

/** How long clamd may take to report a new freshclam database after RELOAD. */
const RELOAD_LIMIT_MS = 5 * 60_000;
/** How long to assume a full database takes to reload when only plain signature files changed. */
const FULL_RELOAD_SETTLE_MS = 60_000;

export interface EngineOptions {
  clamd: ClamdClient;
  signatureDir: string;
  maxSignatureAgeMs: number;
  log: Logger;
  /** How long clamd is given to load a changed database before the worker trusts the new version. */
  reloadSettleMs?: number;
  /** Called when the database version this worker scans with changes (to announce it). */
  onVersion?: (database: SignatureDatabase) => void | Promise<void>;
}

export interface SelfTest {
  passed: boolean;
  at: Date;
  detail: string;
}

export class ClamdEngine {
  database?: SignatureDatabase;
  selfTest?: SelfTest;
  /** clamd's last answer to PING; flips on every probe and every failed scan. */
  clamdUp = false;
  clamdVersion?: string;
  /** Set while clamd reloads a changed database: verdicts are not cached meanwhile. */
  reloadingSince?: Date;
  private lastError?: string;
  private readonly settleMs: number;

  constructor(private readonly opts: EngineOptions) {
    this.settleMs = opts.reloadSettleMs ?? 3_000;
  }

  get clamd(): ClamdClient {
    return this.opts.clamd;
  }

  /**
   * Whether a verdict reached now may be cached under `database.version`: not during a reload, and
   * not with signatures older than allowed (their "clean" must not outlive them).
   */
  get cacheable(): boolean {
    return this.database !== undefined && this.reloadingSince === undefined && this.signaturesFresh();
  }

  /** First contact: reads the database, waits for clamd (it may still be loading), runs the self-test. */
  async start(waitForClamdMs: number): Promise<void> {
    this.database = await readSignatureDatabase(this.opts.signatureDir);
    const deadline = Date.now() + waitForClamdMs;
    while (!(await this.probe())) {
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    if (this.clamdUp) await this.runSelfTest();
    this.opts.log.info(
      {
        signatures: this.database.version,
        builtAt: this.database.builtAt.toISOString(),
        clamd: this.clamdVersion,
        selfTest: this.selfTest?.detail,
      },
      this.clamdUp
        ? 'clamd answers; signature database loaded'
        : `clamd not answering yet: ${this.lastError}`,
    );
    await this.opts.onVersion?.(this.database);
  }

  /** PING; keeps clamdUp current and logs each change. */
  async probe(): Promise<boolean> {
    try {
      await this.clamd.ping();
      this.clamdVersion ??= await this.clamd.version().catch(() => undefined);
      this.markUp();
    } catch (err) {
      this.markDown((err as Error).message);
    }
    return this.clamdUp;
  }

  markUp(): void {
    if (!this.clamdUp && this.lastError) this.opts.log.info('clamd answers again');
    this.clamdUp = true;
    this.lastError = undefined;
  }

  markDown(reason: string): void {
    if (this.clamdUp || this.lastError === undefined)
      this.opts.log.error({ reason }, 'clamd is not answering');
    this.clamdUp = false;
    this.lastError = reason;
  }

  /** EICAR must be found: proves clamd scans and the database is loaded (not just that it answers). */
  async runSelfTest(): Promise<SelfTest> {
    const previous = this.selfTest;
    try {
      const outcome = await this.clamd.scan(EICAR, { timeoutMs: 10_000 });
      this.selfTest =
        outcome.status === 'infected'
          ? { passed: true, at: new Date(), detail: `EICAR detected as ${outcome.signature}` }
          : {
              passed: false,
              at: new Date(),
              detail: 'EICAR was not detected: the database has no EICAR signature',
            };
    } catch (err) {
      this.selfTest = {
        passed: false,
        at: new Date(),
        detail: `self-test failed: ${(err as Error).message}`,
      };
    }
    // logged when the outcome changes, not on every retry
    if (this.selfTest.passed !== previous?.passed)
      this.opts.log[this.selfTest.passed ? 'info' : 'error'](
        { selfTest: this.selfTest.detail },
        'EICAR self-test',
      );
    return this.selfTest;
  }

  /** Checks the database directory; on a change asks clamd to reload and switches once settled. */
  async checkSignatures(): Promise<void> {
    const current = this.database;
    if (!current || this.reloadingSince) return;
    const fingerprint = await databaseFingerprint(this.opts.signatureDir).catch(() => current.fingerprint);
    if (fingerprint === current.fingerprint) return;
    let next: SignatureDatabase;
    try {
      next = await readSignatureDatabase(this.opts.signatureDir);
    } catch (err) {
      this.opts.log.error(
        { err: (err as Error).message },
        'the signature directory changed and cannot be read',
      );
      return;
    }
    if (next.version === current.version) {
      this.database = next; // touched, not changed
      return;
    }
    this.reloadingSince = new Date();
    this.opts.log.info(
      { from: current.version, to: next.version },
      'signature database changed: clamd reloads',
    );
    try {
      await this.clamd.reload();
      await this.untilLoaded(next);
      this.database = next;
      await this.runSelfTest();
      this.opts.log.info(
        { signatures: next.version, clamd: this.clamdVersion },
        'clamd reloaded its signatures',
      );
      await this.opts.onVersion?.(next);
    } catch (err) {
      this.opts.log.error(
        { err: err instanceof ClamdError ? err.message : String(err) },
        'clamd could not reload its signatures; the old version stays in use',
      );
    } finally {
      this.reloadingSince = undefined;
    }
  }

  /**
   * clamd keeps scanning with the old engine while it loads the new one (ConcurrentDatabaseReload),
   * and answers PING all along: only its VERSION tells. With a freshclam database, wait until clamd
   * reports the new daily version; when only plain signature files changed, clamd gives no sign, so
   * wait long enough for a full reload (a whole database takes ~20 s), or briefly for a small one.
   */
  private async untilLoaded(next: SignatureDatabase): Promise<void> {
    const daily = next.files.find((f) => /^daily\.c[lv]d$/.test(f.name))?.version;
    const before = this.database?.files.find((f) => /^daily\.c[lv]d$/.test(f.name))?.version;
    if (daily !== undefined && daily !== before) {
      const deadline = Date.now() + RELOAD_LIMIT_MS;
      for (;;) {
        this.clamdVersion = await this.clamd.version().catch(() => this.clamdVersion);
        if (this.clamdVersion?.split('/')[1] === String(daily)) return;
        if (Date.now() > deadline)
          throw new ClamdError(
            'timeout',
            `clamd still reports "${this.clamdVersion}" ${RELOAD_LIMIT_MS / 1000} s after RELOAD; expected daily ${daily}`,
          );
        await new Promise((r) => setTimeout(r, 1_000));
      }
    }
    const full = next.files.some((f) => f.version !== undefined);
    await new Promise((r) => setTimeout(r, full ? FULL_RELOAD_SETTLE_MS : this.settleMs));
    await this.clamd.ping();
    this.clamdVersion = await this.clamd.version().catch(() => this.clamdVersion);
  }

  /** Scans may be taken: clamd answers and proved with EICAR that it detects. */
  get canScan(): boolean {
    return this.clamdUp && this.selfTest?.passed === true;
  }

  /** Seconds since the newest signature was built. */
  signatureAgeSeconds(now = Date.now()): number | undefined {
    return this.database ? Math.max(0, (now - this.database.builtAt.getTime()) / 1000) : undefined;
  }

  /** The newest signature is younger than allowed. */
  signaturesFresh(): boolean {
    const age = this.signatureAgeSeconds();
    return age !== undefined && age * 1000 <= this.opts.maxSignatureAgeMs;
  }

  /** Readiness: clamd answers, the self-test passed, the database is young enough. */
  readiness(): { clamd: true | string; selfTest: true | string; signatures: true | string } {
    const age = this.signatureAgeSeconds();
    const maxHours = this.opts.maxSignatureAgeMs / 3_600_000;
    return {
      clamd: this.clamdUp
        ? true
        : `clamd at ${this.describeAddress()} is not answering: ${this.lastError ?? 'not checked yet'}`,
      selfTest: this.selfTest?.passed
        ? true
        : (this.selfTest?.detail ?? 'the EICAR self-test has not run yet'),
      signatures:
        age === undefined
          ? 'no signature database read yet'
          : this.signaturesFresh()
            ? true
            : `signatures are ${(age / 3600).toFixed(1)} h old (limit ${maxHours} h, MOAT_AV_SCANNER_MAX_SIGNATURE_AGE_HOURS): is freshclam running?`,
    };
  }

  private describeAddress(): string {
    const a = this.clamd.address;
    return 'path' in a ? a.path : `${a.host}:${a.port}`;
  }
}
