import type { Logger } from '@moat/log';

export interface ShutdownStep {
  name: string;
  run: () => Promise<void> | void;
}

/**
 * On SIGTERM or SIGINT runs the steps in order (each at most `stepTimeoutMs`), then exits 0.
 * A second signal exits at once with 130.
 */
export function installShutdown(log: Logger, steps: () => ShutdownStep[], stepTimeoutMs = 10_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    void (async () => {
      for (const step of steps()) {
        const started = Date.now();
        try {
          await Promise.race([
            Promise.resolve(step.run()),
            new Promise((_, reject) =>
              setTimeout(
                () => reject(new Error(`timed out after ${stepTimeoutMs} ms`)),
                stepTimeoutMs,
              ).unref(),
            ),
          ]);
          log.debug({ step: step.name, ms: Date.now() - started }, 'shutdown step done');
        } catch (err) {
          log.warn({ err, step: step.name }, 'shutdown step failed; continuing');
        }
      }
      log.info('stopped');
      process.exit(0);
    })();
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}
