import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { policyJsonSchema } from './json-schema.js';

const committed = new URL('../policy.schema.json', import.meta.url);

type Json = Record<string, unknown>;
const at = (value: unknown, ...keys: string[]): Json =>
  keys.reduce<Json>((node, key) => (node[key] ?? {}) as Json, value as Json);

describe('json schema', () => {
  test('json schema - is draft 2020-12 and closed to unknown keys', () => {
    const schema = policyJsonSchema();
    assert.equal(schema.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(schema.additionalProperties, false);
    assert.deepEqual(schema.required, ['apiVersion', 'kind', 'metadata']);
    assert.equal(at(schema, 'properties', 'securityRules', 'items').additionalProperties, false);
    assert.equal(schema.title, 'Moat policy');
  });

  test('json schema - describes the input forms (sizes as strings or byte counts)', () => {
    const size = at(policyJsonSchema(), '$defs', 'Size');
    assert.ok(Array.isArray(size.anyOf));
    const types = (size.anyOf as Json[]).map((option) => option.type);
    assert.deepEqual(types.sort(), ['integer', 'string']);
    assert.equal(typeof size.description, 'string');
  });

  test('json schema - policy.schema.json is up to date (run npm run gen:schema -w @moat/policy)', () => {
    const onDisk = JSON.parse(readFileSync(committed, 'utf8')) as unknown;
    assert.deepEqual(onDisk, policyJsonSchema());
  });
});
