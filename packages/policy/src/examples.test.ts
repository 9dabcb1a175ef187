import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { policyJsonSchema } from './json-schema.js';
import { canonicalPolicyJson, formatViolations, parsePolicyText, validatePolicy } from './validate.js';

// dist/examples.test.js → repository root
const examples = new URL('../../../examples/policies/', import.meta.url);
const bad = new URL('bad/', examples);

function read(url: URL): string {
  return readFileSync(url, 'utf8');
}

/** The paths a bad example declares, from its "# expect: <path> <path> …" comment ("<document>" is ""). */
function expectedPaths(text: string): string[] | undefined {
  const line = text.split('\n').find((l) => l.startsWith('# expect:'));
  if (line === undefined) return undefined;
  return line
    .slice('# expect:'.length)
    .trim()
    .split(/\s+/)
    .map((path) => (path === '<document>' ? '' : path));
}

describe('examples', () => {
  for (const name of ['demo.yaml', 'full.yaml']) {
    test(`examples - ${name} is a valid policy`, () => {
      const result = parsePolicyText(read(new URL(name, examples)), name);
      assert.ok(result.ok, result.ok ? '' : `\n${formatViolations(result.violations)}`);
    });

    test(`examples - ${name} validates again to itself once normalised`, () => {
      const first = parsePolicyText(read(new URL(name, examples)), name);
      assert.ok(first.ok);
      const again = validatePolicy(JSON.parse(JSON.stringify(first.policy)));
      assert.ok(again.ok, again.ok ? '' : `\n${formatViolations(again.violations)}`);
      assert.equal(canonicalPolicyJson(again.policy), canonicalPolicyJson(first.policy));
    });

    test(`examples - ${name} points editors at the JSON Schema`, () => {
      assert.match(
        read(new URL(name, examples)),
        /^# yaml-language-server: \$schema=\.\.\/\.\.\/packages\/policy\/policy\.schema\.json\n/,
      );
    });
  }

  test('examples - full.yaml uses every section of the policy', () => {
    const result = parsePolicyText(read(new URL('full.yaml', examples)));
    assert.ok(result.ok);
    const { policy } = result;
    for (const [section, value] of Object.entries({
      zones: policy.zones,
      ...policy.objects,
      ...policy.profiles,
      utmPolicies: policy.utmPolicies,
      vpnPools: policy.vpn?.pools,
      vpnConnections: policy.vpn?.connections,
      qosInterfaces: policy.qos?.interfaces,
      qosClasses: policy.qos?.classes,
    })) {
      assert.ok(Object.keys(value ?? {}).length > 0, `${section} is empty in full.yaml`);
    }
    for (const [section, list] of Object.entries({
      securityRules: policy.securityRules,
      sourceNat: policy.nat.source,
      destinationNat: policy.nat.destination,
      pskSecrets: policy.vpn?.secrets.psk,
      eapSecrets: policy.vpn?.secrets.eap,
    })) {
      assert.ok((list ?? []).length > 0, `${section} is empty in full.yaml`);
    }
  });

  test('examples - full.yaml sets every option of the schema at least once', () => {
    const schema = policyJsonSchema();
    const document = parse(read(new URL('full.yaml', examples)), { merge: true }) as unknown;
    const declared = new Set<string>();
    const used = new Set<string>();
    collectOptions(schema, schema, '', declared, undefined);
    collectOptions(schema, schema, '', used, document);
    const missing = [...declared].filter((path) => !used.has(path));
    assert.deepEqual(missing, [], `options not used in full.yaml:\n  ${missing.join('\n  ')}`);
  });

  const badFiles = readdirSync(bad).sort();

  test('examples - the bad folder has examples', () => {
    assert.ok(badFiles.length >= 10);
  });

  for (const file of badFiles) {
    test(`examples - bad/${file} is rejected`, () => {
      const text = read(new URL(file, bad));
      const result = parsePolicyText(text, file);
      assert.equal(result.ok, false, `bad/${file} was accepted`);
      if (result.ok) return;
      const expected = expectedPaths(text);
      if (expected !== undefined) {
        assert.deepEqual(
          result.violations.map((v) => v.path),
          expected,
          `\n${formatViolations(result.violations)}`,
        );
      }
    });
  }
});

type JsonSchema = Record<string, unknown>;

/**
 * Collect the option paths ("zones.*.interfaces", "securityRules[].log.sessionInit") of a JSON Schema: all of
 * them when `data` is undefined, else only those the data sets.
 */
function collectOptions(
  root: JsonSchema,
  node: JsonSchema,
  path: string,
  out: Set<string>,
  data: unknown,
): void {
  const ref = node.$ref;
  if (typeof ref === 'string') {
    const target = ref.replace('#/$defs/', '');
    collectOptions(
      root,
      ((root.$defs as Record<string, JsonSchema>)[target] ?? {}) as JsonSchema,
      path,
      out,
      data,
    );
    return;
  }
  const declaredOnly = data === undefined;
  for (const key of ['anyOf', 'oneOf'] as const) {
    for (const option of (node[key] as JsonSchema[] | undefined) ?? [])
      collectOptions(root, option, path, out, data);
  }
  const isObject = typeof data === 'object' && data !== null && !Array.isArray(data);
  if (node.type === 'object' && (declaredOnly || isObject)) {
    const values = (data ?? {}) as Record<string, unknown>;
    const properties = (node.properties ?? {}) as Record<string, JsonSchema>;
    for (const [key, schema] of Object.entries(properties)) {
      if (!declaredOnly && !(key in values)) continue;
      out.add(`${path}.${key}`);
      collectOptions(root, schema, `${path}.${key}`, out, declaredOnly ? undefined : values[key]);
    }
    const additional = node.additionalProperties;
    if (typeof additional === 'object' && additional !== null) {
      const entries = declaredOnly ? [undefined] : Object.values(values);
      for (const value of entries) collectOptions(root, additional as JsonSchema, `${path}.*`, out, value);
    }
  }
  if (node.type === 'array' && (declaredOnly || Array.isArray(data))) {
    const items = (node.items ?? {}) as JsonSchema;
    for (const value of declaredOnly ? [undefined] : (data as unknown[]))
      collectOptions(root, items, `${path}[]`, out, value);
  }
}
