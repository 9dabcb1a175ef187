import type { QosClassView, SessionListing } from '@moat/bus';
import { controlV1 as pb } from '@moat/proto';

/** Left-aligned columns, for terminal tables. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}

export const outcomeName = (o: pb.ApplyResponse_Outcome) =>
  (
    ({
      [pb.ApplyResponse_Outcome.OUTCOME_APPLIED]: 'applied',
      [pb.ApplyResponse_Outcome.OUTCOME_UNCHANGED]: 'unchanged',
      [pb.ApplyResponse_Outcome.OUTCOME_REJECTED]: 'rejected',
      [pb.ApplyResponse_Outcome.OUTCOME_VALID]: 'valid',
    }) as Record<number, string>
  )[o] ?? 'unknown';

export function violationLines(vs: pb.Violation[]): string {
  return vs
    .map((v) => `  ${v.path || '<document>'}: ${v.message}${v.line ? ` (line ${v.line}:${v.column})` : ''}`)
    .join('\n');
}

export function historyTable(h: pb.HistoryResponse): string {
  return table(
    ['VERSION', 'CREATED', 'AUTHOR', 'SHA256', 'COMMENT'],
    h.versions.map((v) => [
      `${v.version}${v.version === h.currentVersion ? '*' : ''}`,
      v.createdAt,
      v.author,
      v.sha256.slice(0, 12),
      v.comment + (v.rolledBackFrom ? ` (rollback of ${v.rolledBackFrom})` : ''),
    ]),
  );
}

export function diffText(d: pb.DiffResponse): string {
  if (d.changes.length === 0) return 'no differences';
  return d.changes
    .map((c) => {
      if (c.kind === 'added') return `+ ${c.path}: ${c.afterJson}`;
      if (c.kind === 'removed') return `- ${c.path}: ${c.beforeJson}`;
      return `~ ${c.path}: ${c.beforeJson} → ${c.afterJson}`;
    })
    .join('\n');
}

/** Problems that make `status` exit non-zero. */
export function statusProblems(s: pb.ServiceInstanceStatus): string[] {
  const p: string[] = [];
  if (!s.reachable) p.push('not answering');
  else {
    if (!s.healthy) p.push('unhealthy');
    if (!s.ready)
      p.push(
        `not ready (${Object.entries(s.checks)
          .filter(([, v]) => v !== 'ok')
          .map(([k, v]) => `${k}: ${v}`)
          .join(', ')})`,
      );
  }
  if (s.lagging) p.push('LAGGING behind the current policy');
  if (s.failedVersion) p.push(`failed to apply v${s.failedVersion}: ${s.failedError}`);
  return p;
}

export function statusTable(r: pb.StatusResponse): string {
  const rows = r.services.map((s) => [
    s.service,
    s.instance || '-',
    s.reachable ? (s.healthy ? 'healthy' : 'unhealthy') : 'unreachable',
    s.reachable ? (s.ready ? 'ready' : 'not-ready') : '-',
    s.policyVersion ? `v${s.policyVersion}` : '-',
    s.policyVersion ? `${s.policyLatencyMs} ms` : '-',
    statusProblems(s).join('; ') || 'ok',
  ]);
  const head = `current policy: ${r.currentVersion ? `v${r.currentVersion}` : 'none applied yet'}`;
  const main = `${head}\n${table(['SERVICE', 'INSTANCE', 'HEALTH', 'READY', 'POLICY', 'APPLIED-IN', 'STATUS'], rows)}`;
  const av = antivirusSection(r);
  return av ? `${main}\n\n${av}` : main;
}

/** What av-scanner workers report about themselves (services/av-scanner/src/main.ts, details). */
interface AvScannerDetails {
  clamd?: { up?: boolean; version?: string };
  signatures?: { version?: string; ageHours?: number; maxAgeHours?: number; reloadingSince?: string };
  selfTest?: { passed?: boolean };
  concurrency?: number;
  scanning?: number;
  queue?: { pending?: number; scanning?: number; workersWaiting?: number };
}

function parseDetails(json: string): AvScannerDetails | undefined {
  try {
    return json ? (JSON.parse(json) as AvScannerDetails) : undefined;
  } catch {
    return undefined;
  }
}

/** Each antivirus worker's clamd, signature version and age, and the shared queue's depth. */
export function antivirusSection(r: pb.StatusResponse): string | undefined {
  const workers = r.services.filter((s) => s.service === 'av-scanner' && s.reachable);
  if (workers.length === 0) return undefined;
  let queue: AvScannerDetails['queue'];
  const rows = workers.map((w) => {
    const d = parseDetails(w.detailsJson) ?? {};
    queue ??= d.queue;
    const sig = d.signatures;
    return [
      w.instance,
      d.clamd?.up ? 'up' : 'DOWN',
      sig?.version ?? '-',
      sig?.ageHours === undefined
        ? '-'
        : `${sig.ageHours < 1 ? `${Math.round(sig.ageHours * 60)} min` : `${sig.ageHours.toFixed(1)} h`}${sig.maxAgeHours !== undefined && sig.ageHours > sig.maxAgeHours ? ' (TOO OLD)' : ''}`,
      d.selfTest?.passed ? 'passed' : 'FAILED',
      `${d.scanning ?? 0}/${d.concurrency ?? '-'}`,
    ];
  });
  const depth = queue
    ? `scan queue: ${queue.pending ?? 0} waiting, ${queue.scanning ?? 0} being scanned, ${queue.workersWaiting ?? 0} idle pulls`
    : 'scan queue: depth unknown';
  return `antivirus workers (${workers.length})\n${table(['INSTANCE', 'CLAMD', 'SIGNATURES', 'AGE', 'SELF-TEST', 'SCANNING'], rows)}\n${depth}`;
}

/** One instance's answer to a query, decoded (an instance that failed keeps its error). */
export interface InstanceAnswer<T> {
  instance: string;
  result?: T;
  error?: string;
}

export function decodeAnswers<T>(res: pb.QueryResponse): InstanceAnswer<T>[] {
  return res.answers.map((a) =>
    a.ok
      ? { instance: a.instance, result: JSON.parse(a.resultJson) as T }
      : { instance: a.instance, error: a.error },
  );
}

const endpoint = (address: string, port: number | undefined) =>
  port === undefined ? address : address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/**
 * One table from every instance's answer: `rowsOf` gives an instance's rows, `noteOf` an optional line
 * under the table; an instance that could not answer gets its error as its note.
 */
function perInstance<T>(
  answers: InstanceAnswer<T>[],
  rowsOf: (result: T, instance: string) => string[][],
  noteOf: (result: T) => string | undefined,
): { rows: string[][]; notes: string[] } {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const { instance, result, error } of answers) {
    if (result === undefined) {
      notes.push(`${instance}: ${error}`);
      continue;
    }
    rows.push(...rowsOf(result, instance));
    const note = noteOf(result);
    if (note) notes.push(`${instance}: ${note}`);
  }
  return { rows, notes };
}

/** The NAT a flow went through, read from its reply tuple: `src→a:p` (source NAT), `dst→b:q` (DNAT). */
function natOf({ original: o, reply: r }: SessionListing['sessions'][number]): string {
  const snat = r.destination !== o.source || r.destinationPort !== o.sourcePort;
  const dnat = r.source !== o.destination || r.sourcePort !== o.destinationPort;
  const nat = [
    snat ? `src→${endpoint(r.destination, r.destinationPort)}` : '',
    dnat ? `dst→${endpoint(r.source, r.sourcePort)}` : '',
  ].filter(Boolean);
  return nat.length > 0 ? nat.join(' ') : '-';
}

/** The session table, with the NAT each flow went through. */
export function sessionsTable(answers: InstanceAnswer<SessionListing>[]): string {
  const { rows, notes } = perInstance(
    answers,
    ({ sessions }, instance) =>
      sessions.map((s) => [
        instance,
        s.original.icmpType === undefined ? s.protocol : `${s.protocol}/${s.original.icmpType}`,
        s.state ?? (s.flags.includes('UNREPLIED') ? 'UNREPLIED' : ''),
        endpoint(s.original.source, s.original.sourcePort),
        endpoint(s.original.destination, s.original.destinationPort),
        natOf(s),
        `${s.timeout}s`,
      ]),
    ({ matched, total, sessions }) =>
      `${sessions.length} shown, ${matched} matched, ${total} in the table${
        matched > sessions.length ? ' (raise --limit or narrow the filter)' : ''
      }`,
  );
  const head = ['INSTANCE', 'PROTO', 'STATE', 'SOURCE', 'DESTINATION', 'NAT', 'EXPIRES'];
  return [rows.length > 0 ? table(head, rows) : 'no sessions match', ...notes].join('\n');
}

/** 12500000 → "12.5M", the way tc prints rates. */
export function bits(value: number): string {
  for (const [unit, size] of [
    ['G', 1e9],
    ['M', 1e6],
    ['k', 1e3],
  ] as const) {
    if (value >= size) return `${Number((value / size).toFixed(2))}${unit}`;
  }
  return String(value);
}

export function qosTable(answers: InstanceAnswer<QosClassView[]>[]): string {
  const stat = (c: QosClassView, read: (stats: NonNullable<QosClassView['stats']>) => string) =>
    c.stats ? read(c.stats) : '-';
  const { rows, notes } = perInstance(
    answers,
    (classes, instance) =>
      classes.map((c) => [
        instance,
        c.interface,
        c.direction,
        `${c.class}${c.isDefault ? '*' : ''}`,
        `${bits(c.rate)}bit`,
        `${bits(c.ceil)}bit`,
        String(c.priority),
        c.stats?.rateBps === undefined ? '-' : `${bits(c.stats.rateBps)}bit`,
        stat(c, (x) => bits(x.bytes)),
        stat(c, (x) => String(x.packets)),
        stat(c, (x) => String(x.drops)),
        stat(c, (x) => String(x.overlimits)),
        stat(c, (x) => String(x.backlogPackets)),
      ]),
    (classes) => (classes.length === 0 ? 'no interface is shaped (policy qos section)' : undefined),
  );
  const head = [
    'INSTANCE',
    'INTERFACE',
    'DIR',
    'CLASS',
    'RATE',
    'CEIL',
    'PRIO',
    'NOW',
    'BYTES',
    'PACKETS',
    'DROPS',
    'OVERLIMITS',
    'QUEUED',
  ];
  return [...(rows.length > 0 ? [table(head, rows), '* the default class'] : []), ...notes].join('\n');
}
