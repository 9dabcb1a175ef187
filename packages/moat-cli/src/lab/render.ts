import { styleText } from 'node:util';
import type { LabStatus } from './lab.js';

/** Human view of `moat lab status` (the --json view is the LabStatus object itself). */

const LOOPBACK = new Set(['127.0.0.1/8', '::1/128']);

export function renderLabStatus(status: LabStatus, stream: NodeJS.WriteStream = process.stdout): string {
  const paint = (format: Parameters<typeof styleText>[0], text: string) =>
    styleText(format, text, { stream, validateStream: true });
  const yes = (ok: boolean, good: string, bad: string) => (ok ? paint('green', good) : paint('red', bad));
  const lines: string[] = [];

  lines.push(
    `lab: ${status.up ? paint('green', 'up') : paint('red', 'not (fully) up')}   state: ${status.stateDir}`,
  );
  lines.push('', 'namespaces:');
  for (const ns of status.namespaces) {
    lines.push(`  ${ns.name.padEnd(12)} ${yes(ns.exists, 'present', 'missing')}`);
    for (const iface of ns.interfaces) {
      const addresses = iface.addresses.filter((a) => !LOOPBACK.has(a));
      if (iface.name === 'lo' && addresses.length === 0) continue;
      lines.push(`    ${iface.name.padEnd(9)} ${iface.state.padEnd(8)} ${addresses.join('  ')}`);
    }
  }
  lines.push('', 'processes:');
  if (status.processes.length === 0) lines.push('  (none recorded)');
  for (const p of status.processes) {
    const state = p.ready
      ? paint('green', 'ready')
      : p.running
        ? paint('yellow', 'running, not ready')
        : paint('red', 'down');
    lines.push(
      `  ${p.name.padEnd(10)} ${p.namespace.padEnd(12)} pid ${String(p.pid).padEnd(8)} ${state}   ${p.log}`,
    );
  }
  if (!status.up) lines.push('', 'next: `sudo moat lab up` (starts or repairs what is missing)');
  return `${lines.join('\n')}\n`;
}
