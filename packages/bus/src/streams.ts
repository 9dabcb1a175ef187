import {
  AckPolicy,
  type ConsumerConfig,
  JetStreamApiError,
  type JetStreamManager,
  RetentionPolicy,
  StorageType,
  type StreamConfig,
} from '@nats-io/jetstream';
import { subjects } from './subjects.js';

export type StreamDeclaration = Pick<StreamConfig, 'name' | 'subjects' | 'retention' | 'storage'> &
  Partial<StreamConfig>;

const day = 24 * 3600 * 1e9; // nanoseconds

/** JetStream streams, declared as code and created or updated at start-up. */
export const streams = {
  /** Security events for logs/SIEM: limits retention, kept a week or 1 GiB. */
  events: {
    name: 'MOAT_EVENTS',
    subjects: [subjects.eventsAll],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: 7 * day,
    max_bytes: 1024 ** 3,
    discard: 'old',
  },
  /** Antivirus scan jobs: a work queue, each job taken by exactly one av-scanner. */
  scan: {
    name: 'MOAT_SCAN',
    subjects: [subjects.scanRequest],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    // a job is worth nothing after the proxy's deadline (timeoutMs ≤ 10 min): user content is not
    // kept longer, and a queue nobody drains cannot fill the disk (new jobs are refused: fail closed)
    max_age: 15 * 60 * 1e9,
    max_bytes: 2 * 1024 ** 3,
    discard: 'new',
  },
} satisfies Record<string, StreamDeclaration>;

const STREAM_NOT_FOUND = 10059;

/** Creates each stream, or updates it when it exists; idempotent. */
export async function ensureStreams(jsm: JetStreamManager, declarations: StreamDeclaration[]): Promise<void> {
  for (const decl of declarations) {
    try {
      await jsm.streams.info(decl.name);
      await jsm.streams.update(decl.name, decl);
    } catch (err) {
      if (err instanceof JetStreamApiError && err.code === STREAM_NOT_FOUND) await jsm.streams.add(decl);
      else throw err;
    }
  }
}

export type ConsumerDeclaration = {
  stream: string;
  config: Partial<ConsumerConfig> & { durable_name: string };
};

/** Durable consumers, declared as code next to their streams. */
export const consumers = {
  /** One pull consumer shared by every av-scanner worker: each job goes to one worker, and a job
   * whose worker dies before acking is redelivered after `ack_wait` to another. A worker that is
   * still scanning says so every 2 s (+WPI), so a short ack_wait only catches dead workers. */
  avScanner: {
    stream: streams.scan.name,
    config: {
      durable_name: 'av-scanner',
      filter_subject: subjects.scanRequest,
      ack_policy: AckPolicy.Explicit,
      ack_wait: 6 * 1e9,
      max_deliver: 5,
      max_ack_pending: 1000,
    },
  },
} satisfies Record<string, ConsumerDeclaration>;

/** Creates each durable consumer, or updates it when it exists; idempotent. */
export async function ensureConsumers(
  jsm: JetStreamManager,
  declarations: ConsumerDeclaration[],
): Promise<void> {
  for (const { stream, config } of declarations) {
    const existing = await jsm.consumers.info(stream, config.durable_name).catch(() => undefined);
    if (existing) await jsm.consumers.update(stream, config.durable_name, config);
    else await jsm.consumers.add(stream, config);
  }
}
