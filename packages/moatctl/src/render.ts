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
  return `${head}\n${table(['SERVICE', 'INSTANCE', 'HEALTH', 'READY', 'POLICY', 'APPLIED-IN', 'STATUS'], rows)}`;
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

/** What the firewall answers to `sessions` (services/firewall/src/sessions.ts). */
export interface SessionListing {
  matched: number;
  total: number;
  sessions: {
    protocol: string;
    state?: string;
    timeout: number;
    original: FlowEnd;
    reply: FlowEnd;
    flags: string[];
  }[];
}
interface FlowEnd {
  source: string;
  destination: string;
  sourcePort?: number;
  destinationPort?: number;
  icmpType?: number;
}

const endpoint = (address: string, port: number | undefined) =>
  port === undefined ? address : address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;

/** The session table, with the NAT each flow went through (from the reply tuple). */
export function sessionsTable(answers: InstanceAnswer<SessionListing>[]): string {
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const answer of answers) {
    if (!answer.result) {
      notes.push(`${answer.instance}: ${answer.error}`);
      continue;
    }
    const { matched, total, sessions } = answer.result;
    for (const s of sessions) {
      const { original: o, reply: r } = s;
      const snat = r.destination !== o.source || r.destinationPort !== o.sourcePort;
      const dnat = r.source !== o.destination || r.sourcePort !== o.destinationPort;
      const nat = [
        snat ? `src→${endpoint(r.destination, r.destinationPort)}` : '',
        dnat ? `dst→${endpoint(r.source, r.sourcePort)}` : '',
      ]
        .filter(Boolean)
        .join(' ');
      rows.push([
        answer.instance,
        o.icmpType === undefined ? s.protocol : `${s.protocol}/${o.icmpType}`,
        s.state ?? (s.flags.includes('UNREPLIED') ? 'UNREPLIED' : ''),
        endpoint(o.source, o.sourcePort),
        endpoint(o.destination, o.destinationPort),
        nat || '-',
        `${s.timeout}s`,
      ]);
    }
    notes.push(
      `${answer.instance}: ${sessions.length} shown, ${matched} matched, ${total} in the table${
        matched > sessions.length ? ' (raise --limit or narrow the filter)' : ''
      }`,
    );
  }
  const head = ['INSTANCE', 'PROTO', 'STATE', 'SOURCE', 'DESTINATION', 'NAT', 'EXPIRES'];
  return [rows.length > 0 ? table(head, rows) : 'no sessions match', ...notes].join('\n');
}

/** What the qos service answers to `classes` (services/qos/src/shaper.ts ClassView). */
export interface QosClassView {
  interface: string;
  direction: string;
  class: string;
  rate: number;
  ceil: number;
  priority: number;
  isDefault: boolean;
  stats?: {
    bytes: number;
    packets: number;
    drops: number;
    overlimits: number;
    rateBps?: number;
    backlogPackets: number;
  };
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
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const answer of answers) {
    if (!answer.result) {
      notes.push(`${answer.instance}: ${answer.error}`);
      continue;
    }
    if (answer.result.length === 0)
      notes.push(`${answer.instance}: no interface is shaped (policy qos section)`);
    for (const c of answer.result) {
      rows.push([
        answer.instance,
        c.interface,
        c.direction,
        `${c.class}${c.isDefault ? '*' : ''}`,
        `${bits(c.rate)}bit`,
        `${bits(c.ceil)}bit`,
        String(c.priority),
        c.stats?.rateBps === undefined ? '-' : `${bits(c.stats.rateBps)}bit`,
        c.stats ? bits(c.stats.bytes) : '-',
        c.stats ? String(c.stats.packets) : '-',
        c.stats ? String(c.stats.drops) : '-',
        c.stats ? String(c.stats.overlimits) : '-',
        c.stats ? String(c.stats.backlogPackets) : '-',
      ]);
    }
  }
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
