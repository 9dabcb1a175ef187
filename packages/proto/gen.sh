#!/usr/bin/env bash
# Generates the TypeScript gRPC stubs for every contract in proto/ into src/gen (committed, do not edit).
# CI regenerates and fails when the committed code differs (scripts/check-generated.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
command -v protoc >/dev/null || { echo "protoc not found: apt-get install -y protobuf-compiler (scripts/setup.sh does this)" >&2; exit 1; }
plugin="$root/node_modules/.bin/protoc-gen-ts_proto"
[ -x "$plugin" ] || { echo "ts-proto not installed: run npm install at the repository root" >&2; exit 1; }
rm -rf "$here/src/gen"
mkdir -p "$here/src/gen"
mapfile -t files < <(cd "$root/proto" && find . -name '*.proto' | sed 's|^\./||' | sort)
protoc \
  --plugin="protoc-gen-ts_proto=$plugin" \
  --ts_proto_out="$here/src/gen" \
  --ts_proto_opt=outputServices=grpc-js,env=node,esModuleInterop=true,importSuffix=.js,forceLong=number,useOptionals=none,oneof=unions-value,useDate=false,snakeToCamel=true \
  -I "$root/proto" "${files[@]}"
# Mark every generated file; biome and reviewers skip them.
for f in $(find "$here/src/gen" -name '*.ts'); do
  { echo '// DO NOT EDIT: generated from proto/ by packages/proto/gen.sh'; cat "$f"; } > "$f.tmp" && mv "$f.tmp" "$f"
done
echo "generated $(find "$here/src/gen" -name '*.ts' | wc -l) files from ${#files[@]} contracts"
