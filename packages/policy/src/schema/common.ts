/**
 * Building blocks shared by every section of the policy schema: strict objects with helpful unknown-key
 * messages, name and reference schemas, "one or many" lists and file paths.
 */
import { z } from 'zod';

/** The keyword that matches everything in zone, address and service lists. */
export const ANY = 'any';

/** Zone names: short, lowercase, usable as nftables identifiers. */
export const ZONE_NAME_PATTERN = /^[a-z][a-z0-9-]{0,30}$/;
/** Names of objects, profiles, policies and rules: a letter first, so that names never look like literals. */
export const NAME_PATTERN = /^[A-Za-z][A-Za-z0-9_.-]{0,62}$/;
/** Linux interface names (IFNAMSIZ is 16 including the terminating NUL). */
export const INTERFACE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** Edit distance counting an adjacent transposition as one edit (optimal string alignment), for hints. */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number): number => rows[i]?.[j] ?? 0;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] ?? [];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        best = Math.min(best, at(i - 2, j - 2) + 1);
      row[j] = best;
    }
  }
  return at(a.length, b.length);
}

/** The closest candidate to `name`, if one is close enough to be a likely typo. */
export function closestMatch(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  const lower = name.toLowerCase();
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return bestDistance <= limit ? best : undefined;
}

/** A human list of names, shortened when long. */
export function listNames(names: readonly string[], max = 12): string {
  if (names.length <= max) return names.join(', ');
  return `${names.slice(0, max).join(', ')}, … (${names.length - max} more)`;
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closestMatch(key, known);
  if (guess !== undefined) return `unknown key; did you mean "${guess}"?`;
  return known.length === 0
    ? 'unknown key; no keys are allowed here'
    : `unknown key; allowed keys: ${known.join(', ')}`;
}

/**
 * Separates the per-key messages of one `unrecognized_keys` issue; `validate.ts` splits on it so that every
 * unknown key is reported at its own path.
 */
export const UNKNOWN_KEY_SEPARATOR = '\n';

/**
 * A strict object: unknown keys are errors (typos must never be silently ignored), each reported with a
 * "did you mean" hint or the list of allowed keys.
 */
export function strictObject<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((key) => unknownKeyMessage(key, known)).join(UNKNOWN_KEY_SEPARATOR)
        : undefined,
  });
}

/** A name defined by the policy (an object, profile, policy or rule). */
export const nameSchema = z
  .string()
  .regex(
    NAME_PATTERN,
    'names start with a letter and contain only letters, digits, "_", "." and "-" (at most 63 characters)',
  )
  .refine((name) => name !== ANY, { message: '"any" is reserved and cannot be used as a name' });

/** A zone name. */
export const zoneNameSchema = z
  .string()
  .regex(
    ZONE_NAME_PATTERN,
    'zone names start with a lowercase letter and contain only a-z, 0-9 and "-" (at most 31 characters)',
  )
  .refine((name) => name !== ANY, { message: '"any" is reserved and cannot be used as a zone name' });

/** A Linux network interface name. */
export const interfaceNameSchema = z
  .string()
  .regex(
    INTERFACE_NAME_PATTERN,
    'expected a Linux interface name (1-15 characters: letters, digits, "_", "." and "-")',
  )
  .describe('A Linux network interface name.');

/** A reference to something defined elsewhere in the policy, by name; `what` names the kind for messages. */
export function refSchema(what: string, hint?: string) {
  return z
    .string()
    .regex(NAME_PATTERN, `expected the name of ${what}${hint === undefined ? '' : ` (${hint})`}`)
    .describe(`The name of ${what}.`);
}

/** A reference that may also be the keyword `any`. */
export function refOrAnySchema(what: string, hint?: string) {
  return z
    .string()
    .regex(NAME_PATTERN, `expected "any" or the name of ${what}${hint === undefined ? '' : ` (${hint})`}`)
    .describe(`"any", or the name of ${what}.`);
}

/** Zone reference or `any`. */
export const zoneRefOrAnySchema = z
  .string()
  .regex(ZONE_NAME_PATTERN, 'expected "any" or the name of a zone')
  .describe('"any", or the name of a zone.');

/** Zone reference. */
export const zoneRefSchema = z
  .string()
  .regex(ZONE_NAME_PATTERN, 'expected the name of a zone')
  .describe('The name of a zone.');

/**
 * A single item or a list of them, normalised to a list. `what` names one item, with its article ("a zone
 * name"), for the message given when the value is neither.
 */
export function oneOrMany<T extends z.ZodType<unknown, unknown>>(item: T, what: string, allowEmpty = false) {
  return z
    .union([item, z.array(item).min(allowEmpty ? 0 : 1, 'the list must not be empty')], {
      error: `expected ${what} or a list of them`,
    })
    .transform((value): z.output<T>[] => (Array.isArray(value) ? value : [value as z.output<T>]));
}

/** A free-text description. */
export const descriptionSchema = z.string().max(1024).describe('Free text for humans.').optional();

/** An absolute file or directory path. Policy is stored centrally, so relative paths would have no base. */
export const absolutePathSchema = z
  .string()
  .regex(
    /^\/[^\0]*$/,
    'expected an absolute path (policy is stored centrally, so relative paths have no base)',
  )
  .refine((path) => !path.split('/').includes('..'), { message: 'paths must not contain ".." segments' })
  .describe('An absolute path on the gateway.');

/** Reject duplicate entries in a list (reported at the duplicate). */
export function uniqueList<T extends z.ZodType<unknown, unknown>>(item: T, what: string) {
  return z.array(item).superRefine((values, ctx) => {
    const seen = new Set<string>();
    values.forEach((value, index) => {
      const key = JSON.stringify(value);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [index], message: `duplicate ${what} ${key}` });
      seen.add(key);
    });
  });
}
