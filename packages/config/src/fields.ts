import { z } from 'zod';

/** A TCP port given as a string or number in the environment. */
export const port = () => z.coerce.number().int().min(0).max(65535);

/** A URL with one of the allowed schemes. */
export const url = (...schemes: string[]) =>
  z.string().refine(
    (v) => {
      try {
        return schemes.length === 0 || schemes.includes(new URL(v).protocol.replace(/:$/, ''));
      } catch {
        return false;
      }
    },
    { message: `must be a URL${schemes.length ? ` with scheme ${schemes.join(' or ')}` : ''}` },
  );

/** A comma-separated list such as `control,proxy`. */
export const commaList = () =>
  z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : v,
    z.array(z.string().min(1)),
  );

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/** A duration such as `500ms`, `5s`, `2m`, or a bare number of milliseconds; yields milliseconds. */
export const duration = () =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
    return m ? Number(m[1]) * (units[m[2] ?? 'ms'] ?? 1) : Number.NaN;
  }, z.number({ message: 'must be a duration such as 500ms, 5s or 2m' }).nonnegative());
