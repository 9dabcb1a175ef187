#!/usr/bin/env bash
# Fails when generated files (gRPC stubs, the policy JSON Schema) are stale: regenerate and compare.
set -euo pipefail
cd "$(dirname "$0")/.."
bash packages/proto/gen.sh >/dev/null
node packages/policy/scripts/write-json-schema.mjs >/dev/null
if ! git diff --exit-code --stat -- packages/proto/src/gen packages/policy/policy.schema.json; then
  echo "generated code is stale: run 'npm run gen:proto' and 'npm run gen:schema -w @moat/policy', then commit" >&2
  exit 1
fi
if [ -n "$(git status --porcelain -- packages/proto/src/gen)" ]; then
  echo "generated files are not committed: $(git status --porcelain -- packages/proto/src/gen)" >&2
  exit 1
fi
echo "generated code is up to date"
