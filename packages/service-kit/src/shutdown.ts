import type { Logger } from '@moat/log';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

/** Runs the steps in order, each at most `stepTimeoutMs`; a failed or hung step is logged and skipped. */
export async function runShutdownSteps(
  log: Logger,
  steps: ShutdownStep[],
  stepTimeoutMs = 10_000,
): Promise<void> {
  for (const step of steps) {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve(step.run()),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`timed out after ${stepTimeoutMs} ms`)), stepTimeoutMs);
        }),
      ]);
      log.debug({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
    } catch (err) {
      log.warn({ err, step: step.name }, 'shutdown step failed; continuing');
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * On SIGTERM or SIGINT (or the given signals) runs the steps (see runShutdownSteps), then exits 0.
 * A second signal exits at once with 130.
 */
export function installShutdown(
  log: Logger,
  steps: () => ShutdownStep[],
  stepTimeoutMs = 10_000,
  signals: NodeJS.Signals[] = ['SIGTERM', 'SIGINT'],
): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    void runShutdownSteps(log, steps(), stepTimeoutMs).then(() => {
      log.info('stopped');
      process.exit(0);
    });
  };
  for (const signal of signals) process.on(signal, onSignal);
}
