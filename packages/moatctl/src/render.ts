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
