/**
 * Validation of policy documents: YAML/JSON text → schema (types, formats, normalisation) → cross-field and
 * reference checks. Every problem is reported at once, each with the exact path of the bad field.
 */
import { isMap, isNode, isPair, isScalar, isSeq, LineCounter, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { UNKNOWN_KEY_SEPARATOR } from './schema/common.js';
import { crossCheckPolicy, formatRawPath, type PathSegment } from './schema/cross-checks.js';
import { type Policy, policySchema } from './schema/policy.js';

export interface PolicyViolation {
  /** Where: "securityRules[2].utmPolicy", "profiles.antivirus.default.maxScanSize"; "" for the whole document. */
  path: string;
  /** What is wrong and what to do about it. */
  message: string;
  /** 1-based line and column in the source text, when validated from text and the location is known. */
  line?: number;
  column?: number;
}

export type PolicyValidation = { ok: true; policy: Policy } | { ok: false; violations: PolicyViolation[] };

/** Thrown by callers that need a valid policy; carries every violation. */
export class PolicyValidationError extends Error {
  override readonly name = 'PolicyValidationError';
  readonly violations: PolicyViolation[];

  constructor(violations: PolicyViolation[], options?: { cause?: unknown }) {
    const count = violations.length;
    super(
      `policy is invalid (${count} problem${count === 1 ? '' : 's'}):\n${formatViolations(violations)}`,
      options,
    );
    this.violations = violations;
  }
}

/** One line per violation: "  <path>: <message>", with " (line L:C)" when the location is known. */
export function formatViolations(violations: readonly PolicyViolation[]): string {
  return violations
    .map((v) => {
      const where =
        v.line === undefined ? '' : ` (line ${v.line}${v.column === undefined ? '' : `:${v.column}`})`;
      return `  ${v.path === '' ? '<document>' : v.path}: ${v.message}${where}`;
    })
    .join('\n');
}

// ------------------------------------------------------------------------------------------ messages

function describeExpected(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'boolean':
      return 'true or false';
    case 'int':
      return 'an integer';
    case 'string':
    case 'number':
      return `a ${expected}`;
    default:
      return expected;
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  return String(value);
}

/** Messages for zod's built-in checks, worded for people writing YAML. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return `required: expected ${describeExpected(issue.expected)}`;
      return `expected ${describeExpected(issue.expected)}, got ${describeValue(issue.input)}`;
    case 'invalid_value': {
      const values = issue.values.map((value) => JSON.stringify(value));
      const expected = values.length === 1 ? values.join('') : `one of ${values.join(', ')}`;
      return issue.input === undefined
        ? `required: expected ${expected}`
        : `expected ${expected}, got ${describeValue(issue.input)}`;
    }
    case 'invalid_union':
      if ('discriminator' in issue && typeof issue.discriminator === 'string') {
        const options = Array.isArray(issue.options) ? issue.options.map(String).join(', ') : '';
        const input = issue.input;
        const value =
          typeof input === 'object' && input !== null && !Array.isArray(input)
            ? (input as Record<string, unknown>)[issue.discriminator]
            : undefined;
        if (value === undefined) return `required: expected one of ${options}`;
        return `expected one of ${options}, got ${describeValue(value)}`;
      }
      return undefined;
    case 'too_small': {
      const min = Number(issue.minimum);
      if (issue.origin === 'array') return min <= 1 ? 'must not be empty' : `needs at least ${min} items`;
      if (issue.origin === 'string')
        return min <= 1 ? 'must not be empty' : `must be at least ${min} characters`;
      return issue.inclusive ? `must be at least ${min}` : `must be more than ${min}`;
    }
    case 'too_big': {
      const max = Number(issue.maximum);
      if (issue.origin === 'array') return `must have at most ${max} items`;
      if (issue.origin === 'string') return `must be at most ${max} characters`;
      return issue.inclusive ? `must be at most ${max}` : `must be less than ${max}`;
    }
    default:
      return undefined;
  }
};

interface RawViolation {
  path: PathSegment[];
  message: string;
}

function toSegments(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((segment) => (typeof segment === 'number' ? segment : String(segment)));
}

/** Did a union branch get past the type check (so its issues describe what is wrong inside the value)? */
function branchMatched(issues: readonly z.core.$ZodIssue[]): boolean {
  return issues.some((issue) => {
    if (issue.path.length > 0) return true;
    if (issue.code === 'invalid_type' || issue.code === 'invalid_value') return false;
    if (issue.code === 'invalid_union') return issue.errors.some(branchMatched);
    return true;
  });
}

function issuesToViolations(issues: readonly z.core.$ZodIssue[], base: PathSegment[] = []): RawViolation[] {
  return issues.flatMap((issue): RawViolation[] => {
    const path = [...base, ...toSegments(issue.path)];
    switch (issue.code) {
      case 'unrecognized_keys': {
        const messages = issue.message.split(UNKNOWN_KEY_SEPARATOR);
        return issue.keys.map((key, index) => ({
          path: [...path, key],
          message: messages.length === issue.keys.length ? (messages[index] ?? 'unknown key') : 'unknown key',
        }));
      }
      case 'invalid_union': {
        const matched = issue.errors.find(branchMatched);
        if (matched !== undefined) return issuesToViolations(matched, path);
        const missing =
          issue.errors.length > 0 &&
          issue.errors.every((branch) => branch.every((inner) => inner.message.startsWith('required')));
        return [{ path, message: missing ? `required: ${issue.message}` : issue.message }];
      }
      case 'invalid_key': {
        const reason = issue.issues.map((inner) => inner.message).join('; ');
        return [{ path, message: `invalid name "${String(issue.path.at(-1))}": ${reason}` }];
      }
      default:
        return [{ path, message: issue.message }];
    }
  });
}

/**
 * Where a path falls in the document, as a sortable tuple: the position of each key among its siblings (or
 * the list index). Missing keys (required fields) sort after their present siblings.
 */
function documentOrder(input: unknown, path: readonly PathSegment[]): number[] {
  const order: number[] = [];
  let node = input;
  for (const segment of path) {
    if (Array.isArray(node) && typeof segment === 'number') {
      order.push(segment);
      node = node[segment];
    } else if (typeof node === 'object' && node !== null && !Array.isArray(node)) {
      const index = Object.keys(node).indexOf(String(segment));
      order.push(index < 0 ? Number.MAX_SAFE_INTEGER : index);
      node = (node as Record<string, unknown>)[String(segment)];
    } else {
      order.push(Number.MAX_SAFE_INTEGER);
      node = undefined;
    }
  }
  return order;
}

function compareOrder(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const difference = (a[i] ?? 0) - (b[i] ?? 0);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

/** Sort violations into document order (stable: several problems with one field keep their order). */
function inDocumentOrder(input: unknown, violations: RawViolation[]): RawViolation[] {
  return violations
    .map((violation) => ({ violation, order: documentOrder(input, violation.path) }))
    .sort((a, b) => compareOrder(a.order, b.order))
    .map(({ violation }) => violation);
}

function finish(
  raw: RawViolation[],
  locate?: (path: PathSegment[]) => { line: number; column: number } | undefined,
) {
  const seen = new Set<string>();
  const out: PolicyViolation[] = [];
  for (const violation of raw) {
    const path = formatRawPath(violation.path);
    const key = `${path}\0${violation.message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const location = locate?.(violation.path);
    out.push(
      location === undefined
        ? { path, message: violation.message }
        : { path, message: violation.message, ...location },
    );
  }
  return out;
}

function validateRaw(
  input: unknown,
): { ok: true; policy: Policy } | { ok: false; violations: RawViolation[] } {
  if (input === undefined || input === null) {
    return {
      ok: false,
      violations: [
        {
          path: [],
          message: 'the policy document is empty; expected a mapping with apiVersion, kind and metadata',
        },
      ],
    };
  }
  const parsed = policySchema.safeParse(input, { error: errorMap });
  const violations = [
    ...(parsed.success ? [] : issuesToViolations(parsed.error.issues)),
    ...crossCheckPolicy(input),
  ];
  if (parsed.success && violations.length === 0) return { ok: true, policy: parsed.data };
  return { ok: false, violations: inDocumentOrder(input, violations) };
}

/**
 * Validate a policy given as data (e.g. parsed JSON): the schema, then references and cross-field rules.
 * On success the policy is normalised (sizes in bytes, rates in bit/s, durations in seconds, defaults filled).
 * A normalised policy validates again to itself.
 */
export function validatePolicy(input: unknown): PolicyValidation {
  const result = validateRaw(input);
  return result.ok ? result : { ok: false, violations: finish(result.violations) };
}

// ------------------------------------------------------------------------------------------ YAML / JSON text

function rangeOf(node: unknown): readonly [number, number, number] | undefined {
  return isNode(node) ? (node.range ?? undefined) : undefined;
}

function keyOf(node: unknown): string | undefined {
  if (isScalar(node)) return String(node.value);
  return undefined;
}

/** The path of a node from its ancestors (as given by `visit`). */
function pathOfAncestors(chain: readonly unknown[]): PathSegment[] {
  const path: PathSegment[] = [];
  chain.forEach((node, index) => {
    const next = chain[index + 1];
    if (isPair(node)) {
      const key = keyOf(node.key);
      if (key !== undefined && next === node.value) path.push(key);
    } else if (isSeq(node) && next !== undefined) {
      const position = node.items.indexOf(next as never);
      if (position >= 0) path.push(position);
    }
  });
  return path;
}

/** The path of the node at a source offset (used to place duplicate-key errors). */
function pathAtOffset(node: unknown, offset: number, path: PathSegment[] = []): PathSegment[] {
  const within = (n: unknown): boolean => {
    const range = rangeOf(n);
    return range !== undefined && offset >= range[0] && offset < range[2];
  };
  if (isMap(node)) {
    for (const pair of node.items) {
      const key = keyOf(pair.key);
      if (key === undefined) continue;
      const keyRange = rangeOf(pair.key);
      if (keyRange !== undefined && offset >= keyRange[0] && offset <= keyRange[1]) {
        return [...path, key];
      }
      if (within(pair.value)) return pathAtOffset(pair.value, offset, [...path, key]);
    }
  } else if (isSeq(node)) {
    for (const [index, item] of node.items.entries())
      if (within(item)) return pathAtOffset(item, offset, [...path, index]);
  }
  return path;
}

/**
 * Parse and validate policy text, YAML or JSON (JSON is YAML). Syntax errors, duplicate keys and an empty
 * document are violations with their line and column; then as `validatePolicy`, with source locations.
 */
export function parsePolicyText(text: string, sourceName?: string): PolicyValidation {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    uniqueKeys: true,
    merge: true,
    strict: true,
  });
  const where = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  const locationText = ({ line, column }: { line: number; column: number }): string =>
    `${sourceName === undefined ? 'line ' : `${sourceName}:`}${line}:${column}`;
  if (doc.errors.length > 0) {
    return {
      ok: false,
      violations: doc.errors.map((error) => {
        const { line, column } = where(error.pos[0]);
        const duplicate = error.code === 'DUPLICATE_KEY';
        const path = duplicate ? formatRawPath(pathAtOffset(doc.contents, error.pos[0])) : '';
        const reason = duplicate
          ? 'duplicate key; each key may appear only once in a mapping'
          : error.message.split('\n')[0];
        // the location is in the message (as "<source>:<line>:<column>"), so it is not repeated in line/column
        return {
          path,
          message: `${locationText({ line, column })}: ${reason}`,
        };
      }),
    };
  }
  const unresolved: PolicyViolation[] = [];
  visit(doc, {
    Alias(_key, alias, ancestors) {
      if (alias.resolve(doc) !== undefined) return;
      const range = rangeOf(alias);
      const location = range === undefined ? '' : `${locationText(where(range[0]))}: `;
      const path = formatRawPath(pathOfAncestors([...ancestors, alias]));
      unresolved.push({
        path,
        message: `${location}alias *${alias.source} refers to no anchor &${alias.source} defined before it`,
      });
    },
  });
  if (unresolved.length > 0) return { ok: false, violations: unresolved };
  let input: unknown;
  try {
    input = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    return {
      ok: false,
      violations: [{ path: '', message: `cannot read the document: ${(error as Error).message}` }],
    };
  }
  const result = validateRaw(input);
  if (result.ok) return result;
  const locate = (path: PathSegment[]) => {
    for (let length = path.length; length >= 0; length--) {
      const node = length === 0 ? doc.contents : doc.getIn(path.slice(0, length), true);
      const range = rangeOf(node);
      if (range !== undefined) return where(range[0]);
    }
    return undefined;
  };
  return { ok: false, violations: finish(result.violations, locate) };
}

// ------------------------------------------------------------------------------------------ canonical form

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .filter((key) => (value as Record<string, unknown>)[key] !== undefined)
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/** Compact JSON with object keys sorted at every level (list order kept): stable for hashing and diffing. */
export function canonicalPolicyJson(policy: Policy): string {
  return JSON.stringify(sortKeys(policy));
}
