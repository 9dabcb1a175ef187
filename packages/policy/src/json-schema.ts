/** The policy's JSON Schema (draft 2020-12), for editors (yaml-language-server) and external tooling. */
import { z } from 'zod';
import { policySchema } from './schema/policy.js';

/**
 * The JSON Schema of a policy document as written (the input side: "10MiB" and 10485760 are both allowed).
 * It checks types, formats and unknown keys; references and cross-field rules are checked by validatePolicy.
 */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(policySchema, {
    target: 'draft-2020-12',
    io: 'input',
    unrepresentable: 'any',
  }) as Record<string, unknown>;
}
