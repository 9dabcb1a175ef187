import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ClamdEngine } from './engine.js';

export type AvMetrics = ReturnType<typeof createAvMetrics>;

export function createAvMetrics(registry: Registry, engine: ClamdEngine, queue: () => number | undefined) {
  const registers = [registry];
  new Gauge({
    name: 'moat_av_clamd_up',
    help: '1 when clamd answered its last PING or scan',
    registers,
    collect() {
      this.set(engine.clamdUp ? 1 : 0);
    },
  });
  new Gauge({
    name: 'moat_av_signature_age_seconds',
    help: 'Age of the newest signature in the database clamd scans with',
    registers,
    collect() {
      const age = engine.signatureAgeSeconds();
      if (age !== undefined) this.set(age);
    },
  });
  new Gauge({
    name: 'moat_av_self_test_passed',
    help: '1 when the last EICAR self-test detected EICAR',
    registers,
    collect() {
      this.set(engine.selfTest?.passed ? 1 : 0);
    },
  });
  new Gauge({
    name: 'moat_av_queue_pending',
    help: 'Scan jobs waiting in the shared queue or being scanned (all workers), as last read',
    registers,
    collect() {
      const depth = queue();
      if (depth !== undefined) this.set(depth);
    },
  });
  return {
    jobs: new Counter({
      name: 'moat_av_jobs_total',
      help: 'Scan jobs handled, by outcome: clean, infected, error, returned (clamd down), expired, malformed',
      labelNames: ['outcome'] as const,
      registers,
    }),
    scans: new Counter({
      name: 'moat_av_verdicts_total',
      help: 'Verdicts published, by result and whether the cache answered',
      labelNames: ['result', 'cached'] as const,
      registers,
    }),
    scanSeconds: new Histogram({
      name: 'moat_av_scan_duration_seconds',
      help: 'Time to reach a verdict with clamd (fetching the content included)',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
    scannedBytes: new Counter({
      name: 'moat_av_scanned_bytes_total',
      help: 'Bytes streamed to clamd',
      registers,
    }),
  };
}
