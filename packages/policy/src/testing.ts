/**
 * Test fixtures for packages that need real policies (import from `@moat/policy/testing`; not part
 * of the runtime API). The examples live in the repository's examples/policies/.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Policy } from './schema/policy.js';
import { parsePolicyText } from './validate.js';

/** Path of examples/policies/<name>.yaml (this file is packages/policy/dist/testing.js). */
export const examplePolicyPath = (name: string): string =>
  fileURLToPath(new URL(`../../../examples/policies/${name}.yaml`, import.meta.url));

/** An example policy's text and its validated form; throws if the example is invalid. */
export function loadExamplePolicy(name = 'demo'): { text: string; policy: Policy } {
  const text = readFileSync(examplePolicyPath(name), 'utf8');
  const r = parsePolicyText(text, `${name}.yaml`);
  if (!r.ok) throw new Error(`examples/policies/${name}.yaml is invalid: ${JSON.stringify(r.violations)}`);
  return { text, policy: r.policy };
}

/** A copy of `policy` that differs only in its description: a distinct document, as valid as the original. */
export const policyVariant = (policy: Policy, description: string): Policy => ({
  ...policy,
  metadata: { ...policy.metadata, description },
});
