import { consumers, ensureConsumers, ensureStreams, streams, subjects } from '@moat/bus';
import type { JetStreamManager } from '@nats-io/jetstream';

export const SCAN_SUBJECT = subjects.scanRequest;
export const SCAN_STREAM = streams.scan.name;
export const SCAN_CONSUMER = consumers.avScanner.config.durable_name;

/**
 * The work queue and its shared consumer, declared idempotently: control declares them at start,
 * and so do workers, so start order never matters.
 */
export async function ensureScanQueue(jsm: JetStreamManager): Promise<void> {
  await ensureStreams(jsm, [streams.scan]);
  await ensureConsumers(jsm, [consumers.avScanner]);
}
