/**
 * The firewall's sessions: the kernel's conntrack table, as `show security flow session` lists it on
 * other gateways. Read with conntrack-tools (`conntrack -L -o extended`) and filtered here.
 */
import type { FlowTuple, Session, SessionListing } from '@moat/bus';
import { QueryArgumentError, runTool } from '@moat/service-kit';
import { z } from 'zod';

/** Most sessions one answer lists. */
export const MAX_SESSIONS = 2000;

const FILTER_SCHEMA = z
  .strictObject({
    source: z.string().min(1).optional(),
    destination: z.string().min(1).optional(),
    protocol: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .optional(),
    port: z.coerce.number().int().min(1).max(65_535).optional(),
    state: z
      .string()
      .regex(/^[A-Za-z_]+$/)
      .optional(),
    // an answer travels in one NATS message (1 MB by default): about 400 bytes a session
    limit: z.coerce.number().int().min(1).max(MAX_SESSIONS).default(100),
  })
  .describe('sessions query');

export type SessionFilter = z.output<typeof FILTER_SCHEMA>;

/** Validates a sessions query's arguments; a bad one is a QueryArgumentError naming the field. */
export function parseSessionFilter(args: Record<string, unknown>): SessionFilter {
  const parsed = FILTER_SCHEMA.safeParse(args);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  const field = issue?.path.join('.') || 'arguments';
  throw new QueryArgumentError(
    `sessions: ${field}: ${issue?.message ?? 'invalid'} (filters: source, destination, protocol, port, state, limit)`,
  );
}

const TUPLE_KEYS: Record<string, keyof FlowTuple> = {
  src: 'source',
  dst: 'destination',
  sport: 'sourcePort',
  dport: 'destinationPort',
  type: 'icmpType',
  code: 'icmpCode',
  packets: 'packets',
  bytes: 'bytes',
};

/** Parses one line of `conntrack -L -o extended`; undefined for anything else. */
export function parseConntrackLine(line: string): Session | undefined {
  const words = line.trim().split(/\s+/);
  const [l3, , protocol, , timeout, ...rest] = words;
  if ((l3 !== 'ipv4' && l3 !== 'ipv6') || protocol === undefined || timeout === undefined) return undefined;
  const session: Session = {
    family: l3 === 'ipv4' ? 4 : 6,
    protocol,
    timeout: Number(timeout),
    original: { source: '', destination: '' },
    reply: { source: '', destination: '' },
    flags: [],
    mark: 0,
  };
  let tuple = session.original;
  for (const word of rest) {
    if (word.startsWith('[') && word.endsWith(']')) {
      session.flags.push(word.slice(1, -1));
      continue;
    }
    const eq = word.indexOf('=');
    if (eq < 0) {
      if (/^[A-Z_]+$/.test(word)) session.state = word;
      continue;
    }
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === 'mark') session.mark = Number(value);
    const field = TUPLE_KEYS[key];
    if (field === undefined) continue;
    // the second src= starts the reply direction
    if (field === 'source' && tuple.source !== '') tuple = session.reply;
    if (field === 'source' || field === 'destination') tuple[field] = value;
    else tuple[field] = Number(value);
  }
  return session.original.source === '' ? undefined : session;
}

export function matchesFilter(session: Session, filter: SessionFilter): boolean {
  const { original, reply } = session;
  if (filter.protocol && session.protocol !== filter.protocol) return false;
  if (filter.state && session.state?.toUpperCase() !== filter.state.toUpperCase()) return false;
  // an address or port matches either end, before or after NAT
  if (filter.source && original.source !== filter.source && reply.destination !== filter.source) return false;
  if (
    filter.destination &&
    original.destination !== filter.destination &&
    reply.source !== filter.destination
  )
    return false;
  if (filter.port !== undefined) {
    const ports = [original.sourcePort, original.destinationPort, reply.sourcePort, reply.destinationPort];
    if (!ports.includes(filter.port)) return false;
  }
  return true;
}

/** One conntrack listing at a time: a burst of queries must not start a burst of table dumps. */
let running: Promise<unknown> = Promise.resolve();

/** Reads the conntrack table (through `command`, e.g. `ip netns exec <ns> conntrack`) and filters it. */
export async function listSessions(
  filter: SessionFilter,
  command: readonly string[] = ['conntrack'],
): Promise<SessionListing> {
  const dump = running.then(() =>
    runTool(command, ['-L', '-o', 'extended'], {
      timeoutMs: 30_000,
      hint: 'is conntrack installed? (Debian: conntrack)',
    }),
  );
  running = dump.catch(() => undefined);
  const out = await dump;
  const listing: SessionListing = { matched: 0, total: 0, sessions: [] };
  for (const line of out.split('\n')) {
    const session = parseConntrackLine(line);
    if (!session) continue;
    listing.total++;
    if (!matchesFilter(session, filter)) continue;
    listing.matched++;
    if (listing.sessions.length < filter.limit) listing.sessions.push(session);
  }
  return listing;
}
