import type { Logger } from '@moat/log';
import { contextFromNatsHeaders, injectIntoNatsHeaders } from '@moat/telemetry';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import {
  connect,
  createInbox,
  headers,
  type Msg,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { type Context, context, trace } from '@opentelemetry/api';

export interface BusOptions {
  servers: string | string[];
  /** Connection name shown by the server, e.g. `control@host-1234`. */
  name: string;
  log: Logger;
  /** Give up the first connection after this long (the service then fails to start, loudly). */
  connectTimeoutMs?: number;
}

export interface JsonMessage<T> {
  subject: string;
  data: T;
  /** The trace context that travelled with the message. */
  context: Context;
  respond(data: unknown): void;
}
export type JsonHandler<T> = (msg: JsonMessage<T>) => void | Promise<void>;

/** A NATS connection with JSON helpers that carry W3C trace context in headers. */
export interface Bus {
  readonly nc: NatsConnection;
  publish(subject: string, data: unknown): void;
  request<T>(subject: string, data: unknown, timeoutMs?: number): Promise<T>;
  /** Collects every reply that arrives within `windowMs` (scatter-gather). */
  gather<T>(subject: string, data: unknown, windowMs: number): Promise<T[]>;
  subscribe<T>(subject: string, handler: JsonHandler<T>, opts?: { queue?: string }): Subscription;
  jetstreamManager(): Promise<JetStreamManager>;
  /** Lets in-flight messages finish, then closes. */
  drain(): Promise<void>;
}

const textEncoder = new TextEncoder();
const encode = (data: unknown) => textEncoder.encode(JSON.stringify(data));

/** W3C trace context for the message, or no headers at all outside a span (cheaper per message). */
function traced(ctx: Context = context.active()) {
  if (!trace.getSpan(ctx)) return {};
  const h = headers();
  injectIntoNatsHeaders(h, ctx);
  return { headers: h };
}

/** Connects to NATS, reconnecting forever after the first success and logging every state change. */
export async function connectBus(opts: BusOptions): Promise<Bus> {
  const nc = await connect({
    servers: opts.servers,
    name: opts.name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    timeout: opts.connectTimeoutMs ?? 5000,
  });
  opts.log.info({ server: nc.getServer() }, 'connected to NATS');
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'error')
        opts.log.warn({ nats: s }, 'NATS connection problem');
      else if (s.type === 'reconnect') opts.log.info({ nats: s }, 'reconnected to NATS');
    }
  })();

  const decode = <T>(m: Msg): T => (m.data.length === 0 ? (undefined as T) : (m.json() as T));

  return {
    nc,
    publish(subject, data) {
      nc.publish(subject, encode(data), traced());
    },
    async request<T>(subject: string, data: unknown, timeoutMs = 2000) {
      const reply = await nc.request(subject, encode(data), { timeout: timeoutMs, ...traced() });
      return decode<T>(reply);
    },
    async gather<T>(subject: string, data: unknown, windowMs: number) {
      const inbox = createInbox();
      const replies: T[] = [];
      const sub = nc.subscribe(inbox, {
        callback: (err, m) => {
          // with nobody subscribed, the server answers once with an empty "503 no responders"
          if (!err && m.data.length > 0) replies.push(decode<T>(m));
        },
      });
      nc.publish(subject, encode(data), { reply: inbox, ...traced() });
      await new Promise((r) => setTimeout(r, windowMs));
      sub.unsubscribe();
      return replies;
    },
    subscribe<T>(subject: string, handler: JsonHandler<T>, subOpts: { queue?: string } = {}) {
      return nc.subscribe(subject, {
        ...subOpts,
        callback: (err, m) => {
          if (err) {
            opts.log.error({ err, subject }, 'subscription error');
            return;
          }
          let data: T;
          try {
            data = decode<T>(m);
          } catch (e) {
            opts.log.warn({ subject: m.subject, err: e }, 'dropped a message that is not JSON');
            return;
          }
          const ctx = contextFromNatsHeaders(m.headers);
          const msg: JsonMessage<T> = {
            subject: m.subject,
            data,
            context: ctx,
            respond: (reply) => m.respond(encode(reply), traced(ctx)),
          };
          Promise.resolve()
            .then(() => context.with(ctx, () => handler(msg)))
            .catch((e: unknown) => opts.log.error({ err: e, subject: m.subject }, 'message handler failed'));
        },
      });
    },
    jetstreamManager: () => jetstreamManager(nc),
    async drain() {
      if (!nc.isClosed()) await nc.drain();
    },
  };
}
