/**
 * Work on one piece of kernel state, one job at a time: a policy change and a periodic recheck of
 * the same nftables table or qdiscs must not interleave their commands.
 */
export type Serial = <T>(work: () => Promise<T>) => Promise<T>;

export function serialQueue(): Serial {
  let tail: Promise<unknown> = Promise.resolve();
  return (work) => {
    const next = tail.then(work);
    tail = next.catch(() => undefined);
    return next;
  };
}

/**
 * Runs `check` every `seconds` (never when 0) until shutdown; its failures are the caller's to
 * report. Returns the stop function, which the caller registers with the kit's shutdown.
 */
export function every(seconds: number, check: () => Promise<void>): () => void {
  if (seconds <= 0) return () => undefined;
  const timer = setInterval(() => void check().catch(() => undefined), seconds * 1000);
  timer.unref();
  return () => clearInterval(timer);
}
