import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';

export interface ConfigIssue {
  /** The environment variable (or file key) at fault. */
  key: string;
  message: string;
}

/** One error that lists every bad key, so an operator fixes them all in one go. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(
    readonly service: string,
    readonly issues: ConfigIssue[],
  ) {
    super(
      `invalid configuration for ${service}:\n${issues.map((i) => `  ${i.key}: ${i.message}`).join('\n')}`,
    );
  }
}

export interface LoadConfigOptions<S extends z.ZodObject> {
  /** Service name, used in error messages. */
  service: string;
  /** Schema whose keys are camelCase names; each maps to `<prefix><SNAKE_CASE>` in the environment. */
  schema: S;
  /** Environment variable prefix, e.g. `MOAT_CONTROL_`. Shared keys may use `env` overrides instead. */
  prefix: string;
  /** Explicit environment variable names for some keys (e.g. shared `MOAT_NATS_URL`). */
  env?: Partial<Record<keyof z.infer<S> & string, string>>;
  /** Environment to read; defaults to process.env. */
  source?: NodeJS.ProcessEnv;
  /** Optional YAML/JSON file whose keys (camelCase) are overridden by the environment. */
  file?: string;
}

const toEnvName = (prefix: string, key: string) =>
  prefix + key.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();

/**
 * Reads configuration from an optional file and the environment (environment wins),
 * validates it against a zod schema and returns the typed result. Throws one ConfigError
 * naming every bad or missing variable.
 */
export function loadConfig<S extends z.ZodObject>(opts: LoadConfigOptions<S>): z.infer<S> {
  const source = opts.source ?? process.env;
  const issues: ConfigIssue[] = [];
  const raw: Record<string, unknown> = {};
  const envNameOf = new Map<string, string>();

  if (opts.file) {
    try {
      const parsed: unknown = parseYaml(readFileSync(opts.file, 'utf8'));
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) Object.assign(raw, parsed);
      else issues.push({ key: opts.file, message: 'the config file must hold a mapping of keys to values' });
    } catch (err) {
      issues.push({ key: opts.file, message: `cannot read config file: ${(err as Error).message}` });
    }
  }

  for (const key of Object.keys(opts.schema.shape)) {
    const envName = (opts.env as Record<string, string> | undefined)?.[key] ?? toEnvName(opts.prefix, key);
    envNameOf.set(key, envName);
    const value = source[envName];
    if (value !== undefined && value !== '') raw[key] = value;
  }

  const result = opts.schema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const top = String(issue.path[0] ?? '');
      const key = envNameOf.get(top) ?? (top || '<config>');
      const message =
        issue.code === 'unrecognized_keys' ? `unknown keys ${issue.keys.join(', ')}` : issue.message;
      issues.push({ key, message });
    }
  }
  if (issues.length > 0) throw new ConfigError(opts.service, issues);
  return (result as { data: z.infer<S> }).data;
}
