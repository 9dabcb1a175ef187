#!/usr/bin/env node
// Writes packages/policy/policy.schema.json from the built package (run `npm run build` first; the
// "gen:schema" script does both). The file is generated: never edit it by hand. A test fails when it is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { policyJsonSchema } from '../dist/json-schema.js';

const target = fileURLToPath(new URL('../policy.schema.json', import.meta.url));
writeFileSync(target, `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
console.log(`wrote ${target}`);
