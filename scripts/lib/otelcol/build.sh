#!/usr/bin/env bash
# Builds the OpenTelemetry Collector that tests export traces to (packages/testkit/src/otel.ts):
# the OTLP receiver, the file and debug exporters, compiled by the OpenTelemetry Collector Builder
# from the Go module proxy. Idempotent: does nothing when the binary was built from this manifest.
#   scripts/lib/otelcol/build.sh            (scripts/setup.sh runs it)
#   scripts/lib/otelcol/build.sh --check    (exit 0 when up to date, 1 when a build is due)
# Env: GO (a Go >= 1.21 binary; a newer toolchain is fetched from the proxy as go.mod asks),
#      MOAT_OTELCOL_DIR (default /opt/moat/otelcol).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ocb_version=v0.162.0 # the builder's release; keep it in step with the manifest's modules
manifest="$here/builder-config.yaml"
out_dir=${MOAT_OTELCOL_DIR:-/opt/moat/otelcol}
bin="$out_dir/otelcol-moat"
stamp="$bin.manifest-sha256"

# Comments do not count: editing them does not cost a rebuild.
hash=$({ echo "$ocb_version"; grep -v '^ *#' "$manifest"; } | sha256sum | cut -d' ' -f1)
if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$hash" ]; then
  echo "otelcol-moat is up to date ($bin)"
  exit 0
fi
[ "${1:-}" != --check ] || { echo "otelcol-moat needs a build ($bin)"; exit 1; }

go=${GO:-go}
go=$(command -v "$go") || { echo "error: no Go toolchain (scripts/setup.sh installs one)" >&2; exit 1; }
# The modules need Go 1.26: a Go >= 1.21 fetches that toolchain from the module proxy by itself.
# -modcacherw keeps the module cache deletable. The builder compiles with the first go on PATH.
export GOTOOLCHAIN=auto GOFLAGS="${GOFLAGS:-} -modcacherw" PATH="${go%/*}:$PATH"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The sources are generated into the temporary folder; only the binary is kept.
sed "/^dist:/a\\  output_path: $work/dist" "$manifest" >"$work/builder-config.yaml"
started=$(date +%s)
# GOFLAGS=-e reaches the builder's `go mod tidy`: the module proxy we reach does not serve
# otlpencodingextension, which only fileexporter's own tests import. Commands without -e ignore it.
GOFLAGS="$GOFLAGS -e" go run "go.opentelemetry.io/collector/cmd/builder@$ocb_version" --config="$work/builder-config.yaml" >"$work/ocb.log" 2>&1 ||
  { cat "$work/ocb.log" >&2; echo "error: building otelcol-moat failed" >&2; exit 1; }

mkdir -p "$out_dir"
install -m 0755 "$work/dist/otelcol-moat" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "$hash" >"$stamp"
echo "built $bin ($(du -h "$bin" | cut -f1)) in $(($(date +%s) - started)) s"
