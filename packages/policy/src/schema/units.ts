/**
 * Quantities written the way engineers write them ("10MiB", "100mbit", "4h") and normalised to plain numbers:
 * sizes to bytes, rates to bits per second, durations to seconds.
 */
import { z } from 'zod';

const SIZE_UNITS: Readonly<Record<string, number>> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
};
const SIZE_PATTERN = /^(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|KiB|MiB|GiB)$/;

const RATE_UNITS: Readonly<Record<string, number>> = {
  bit: 1,
  kbit: 1e3,
  mbit: 1e6,
  gbit: 1e9,
  tbit: 1e12,
};
const RATE_PATTERN = /^(\d+(?:\.\d+)?)\s*([kKmMgGtT]?bit)$/; // no /i: it would be lost in the JSON Schema

const DURATION_UNITS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86400 };
const DURATION_PATTERN = /^(\d+)\s*(s|m|h|d)$/;

function scaled(text: string, pattern: RegExp, units: Readonly<Record<string, number>>): number | undefined {
  const match = pattern.exec(text.trim());
  if (match === null) return undefined;
  const [, amount = '', unit = ''] = match;
  const factor = units[unit] ?? units[unit.toLowerCase()];
  if (factor === undefined) return undefined;
  const value = Math.round(Number(amount) * factor);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** "10MiB" → 10485760; a number is already bytes. Undefined when the text is not a size. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  return scaled(value, SIZE_PATTERN, SIZE_UNITS);
}

/** "100mbit" → 100000000; a number is already bits per second. Undefined when the text is not a rate. */
export function parseRate(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value > 0 ? value : undefined;
  const bits = scaled(value, RATE_PATTERN, RATE_UNITS);
  return bits !== undefined && bits > 0 ? bits : undefined;
}

/** "4h" → 14400; a number is already seconds. Undefined when the text is not a duration. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  return scaled(value, DURATION_PATTERN, DURATION_UNITS);
}

/** Bits per second as the shortest exact-enough tc-style rate: 120000000 → "120mbit". */
export function formatRate(bitsPerSecond: number): string {
  for (const [unit, factor] of [
    ['tbit', 1e12],
    ['gbit', 1e9],
    ['mbit', 1e6],
    ['kbit', 1e3],
  ] as const) {
    if (bitsPerSecond >= factor) return `${Number((bitsPerSecond / factor).toFixed(3))}${unit}`;
  }
  return `${bitsPerSecond}bit`;
}

/** Bytes as a binary size: 10485760 → "10MiB". */
export function formatSize(bytes: number): string {
  for (const [unit, factor] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ] as const) {
    if (bytes >= factor) return `${Number((bytes / factor).toFixed(2))}${unit}`;
  }
  return `${bytes}B`;
}

/** A size in bytes: an integer, or a string such as "10MiB", "512KiB", "1.5GB". Normalised to bytes. */
export const sizeSchema = z
  .union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(
          SIZE_PATTERN,
          'expected a size such as "10MiB", "512KiB" or "2GB" (binary KiB/MiB/GiB or decimal kB/MB/GB), or a byte count',
        ),
    ],
    { error: 'expected a size such as "10MiB", or a byte count' },
  )
  .transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: 'size is too large' });
      return z.NEVER;
    }
    return bytes;
  })
  .meta({
    id: 'Size',
    title: 'Size',
    description:
      'A size in bytes, or a string with a unit: "10MiB", "512KiB", "1GiB" (binary) or "10MB" (decimal).',
  });

/** A rate in bits per second: a positive integer, or a tc-style string such as "10mbit". Normalised to bit/s. */
export const rateSchema = z
  .union(
    [
      z.number().int().positive(),
      z
        .string()
        .regex(
          RATE_PATTERN,
          'expected a rate such as "500kbit", "10mbit" or "1gbit" (bits per second; tc\'s "bps" means bytes, so it is not accepted)',
        ),
    ],
    { error: 'expected a rate such as "10mbit", or bits per second' },
  )
  .transform((value, ctx) => {
    const bits = parseRate(value);
    if (bits === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: 'rate must be greater than zero and finite' });
      return z.NEVER;
    }
    return bits;
  })
  .meta({
    id: 'Rate',
    title: 'Rate',
    description: 'Bits per second, or a string with a unit: "500kbit", "10mbit", "1gbit" (SI units, as tc).',
  });

/** A duration in seconds: an integer, or "30s", "10m", "4h", "1d". Normalised to seconds. */
export const durationSchema = z
  .union(
    [
      z.number().int().nonnegative(),
      z
        .string()
        .regex(DURATION_PATTERN, 'expected a duration such as "30s", "10m", "4h" or "1d", or seconds'),
    ],
    { error: 'expected a duration such as "4h", or seconds' },
  )
  .transform((value, ctx) => {
    const seconds = parseDuration(value);
    if (seconds === undefined) {
      ctx.issues.push({ code: 'custom', input: value, message: 'duration is too large' });
      return z.NEVER;
    }
    return seconds;
  })
  .meta({
    id: 'Duration',
    title: 'Duration',
    description: 'Seconds, or a string with a unit: "30s", "10m", "4h", "1d".',
  });
