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

const sizeUnits: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};
/** A size such as `64KiB`, `10MiB` or a bare number of bytes (binary units either way); yields bytes. */
export const byteSize = () =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(v.trim());
    const unit = sizeUnits[(m?.[2] ?? '').toLowerCase()];
    return m && unit !== undefined ? Math.round(Number(m[1]) * unit) : Number.NaN;
  }, z.number({ message: 'must be a size such as 65536, 64KiB or 10MiB' }).int().nonnegative());

/** A boolean given as true/false, yes/no, on/off or 1/0. */
export const bool = () =>
  z.preprocess(
    (v) => {
      if (typeof v !== 'string') return v;
      const s = v.trim().toLowerCase();
      if (['true', 'yes', 'on', '1'].includes(s)) return true;
      if (['false', 'no', 'off', '0'].includes(s)) return false;
      return v;
    },
    z.boolean({ message: 'must be true or false' }),
  );
