import type { styleText } from 'node:util';

/**
 * Readable child output for `moat dev`: every line gets a coloured `[name]`
 * prefix; pino JSON lines are shortened to `time level msg extra=…`.
 */

export type Paint = (format: Parameters<typeof styleText>[0], text: string) => string;
export const noPaint: Paint = (_format, text) => text;

const PREFIX_COLOURS = ['cyan', 'magenta', 'blue', 'green', 'yellow'] as const;

export function prefixColour(index: number): (typeof PREFIX_COLOURS)[number] {
  return PREFIX_COLOURS[index % PREFIX_COLOURS.length] ?? 'cyan';
}

const PINO_LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};
/** Keys every pino line has (or that only add noise in a terminal). */
const QUIET_KEYS = new Set([
  'level',
  'time',
  'msg',
  'pid',
  'hostname',
  'v',
  'name',
  'service',
  'service.name',
]);
const MAX_EXTRA = 300;

export function formatLogLine(line: string, paint: Paint = noPaint): string {
  if (!line.startsWith('{')) return line;
  let record: unknown;
  try {
    record = JSON.parse(line);
  } catch {
    return line;
  }
  if (typeof record !== 'object' || record === null || !('level' in record)) return line;
  const fields = record as Record<string, unknown>;

  const level = levelName(fields.level);
  const levelText =
    level === 'WARN'
      ? paint('yellow', level)
      : level === 'ERROR' || level === 'FATAL'
        ? paint('red', level)
        : level;
  const extra = Object.entries(fields)
    .filter(([key]) => !QUIET_KEYS.has(key))
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const shortExtra = extra.length > MAX_EXTRA ? `${extra.slice(0, MAX_EXTRA)}…` : extra;
  const msg = typeof fields.msg === 'string' ? fields.msg : '';
  return [formatTime(fields.time), levelText.padEnd(5), msg, shortExtra ? paint('dim', shortExtra) : '']
    .filter(Boolean)
    .join(' ');
}

function levelName(level: unknown): string {
  if (typeof level === 'number') return PINO_LEVELS[level] ?? String(level);
  return String(level).toUpperCase();
}

/** HH:MM:SS.mmm local time (the date adds nothing while watching a dev run). */
function formatTime(time: unknown): string {
  const date = typeof time === 'number' || typeof time === 'string' ? new Date(time) : new Date();
  const valid = Number.isNaN(date.getTime()) ? new Date() : date;
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  return `${pad(valid.getHours())}:${pad(valid.getMinutes())}:${pad(valid.getSeconds())}.${pad(valid.getMilliseconds(), 3)}`;
}

export function prefixLine(name: string, width: number, colour: Parameters<Paint>[0], paint: Paint): string {
  return paint(colour, `[${name}]`.padEnd(width + 2));
}
