/**
 * Read-only questions to a service's instances, asked through control (`moatctl show …`): each
 * query is served on `moat.query.<service>.<name>` and every instance answers for itself (a
 * DaemonSet's pods each for the node they run on), named by its instance id.
 */
import { type Bus, subjects } from '@moat/bus';
import type { Logger } from '@moat/log';
import type { Subscription } from '@nats-io/transport-node';

/** Answers one query; `args` is the caller's JSON object (validate it). Throw to report an error. */
export type QueryHandler = (args: Record<string, unknown>) => Promise<unknown> | unknown;

/** What an instance replies. */
export type QueryReply =
  | { service: string; instance: string; ok: true; result: unknown }
  | { service: string; instance: string; ok: false; error: string };

/** A query's arguments are wrong; the message says which and how to fix them. */
export class QueryArgumentError extends Error {
  override name = 'QueryArgumentError';
}

export function serveQueries(
  bus: Bus,
  who: { service: string; instance: string },
  handlers: Record<string, QueryHandler>,
  log: Logger,
): Subscription[] {
  return Object.entries(handlers).map(([name, handler]) =>
    bus.subscribe<Record<string, unknown> | undefined>(subjects.query(who.service, name), async (m) => {
      let reply: QueryReply;
      try {
        const args = m.data;
        const object = args !== null && typeof args === 'object' && !Array.isArray(args) ? args : {};
        reply = { ...who, ok: true, result: await handler(object) };
      } catch (err) {
        if (!(err instanceof QueryArgumentError)) log.warn({ err, query: name }, 'query failed');
        reply = { ...who, ok: false, error: (err as Error).message };
      }
      try {
        m.respond(reply);
      } catch (err) {
        // e.g. an answer larger than the server's max_payload: say so rather than stay silent
        log.warn({ err, query: name }, 'query answer could not be sent');
        m.respond({ ...who, ok: false, error: `the answer could not be sent: ${(err as Error).message}` });
      }
    }),
  );
}
