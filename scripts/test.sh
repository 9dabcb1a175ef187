#!/usr/bin/env bash
# One command from a fresh machine to the full test suite: setup, static checks, every package's
# unit and integration tests against real NATS/Redis, the namespace lab, the chart and the images.
# This is what CI runs (.ci/run). Run as root: the lab needs network namespaces.
set -euo pipefail
# shellcheck source=lib/env.sh
source "$(dirname "$0")/lib/env.sh"
cd "$MOAT_ROOT"
[ "$(id -u)" = 0 ] || die "the suite installs packages and builds network namespaces: run as root (sudo scripts/test.sh)"
started=$SECONDS
log=$(mktemp)
trap 'rm -f "$log"; bin/moat lab down >/dev/null 2>&1 || true' EXIT

bash scripts/setup.sh

step "static checks: format and lint (biome), types, generated code, import cycles"
npx biome ci . --reporter=summary
npx turbo run typecheck --output-logs=errors-only
bash scripts/check-generated.sh
npx madge --circular --extensions js packages/*/dist services/*/dist

step "unit and integration tests (real NATS, Redis, namespaces)"
set +e
# --continue: one failing package must not hide the others' results (the count below is of every test)
npx turbo run test --concurrency=1 --force --continue 2>&1 | tee "$log"
tests_rc=${PIPESTATUS[0]}
set -e

step "chart: helm lint and template"
bash scripts/chart-check.sh

step "images: rootless podman build and smoke test of the service images"
bash scripts/images.sh build control proxy tls-mediation firewall qos av-scanner
for service in control proxy tls-mediation firewall qos av-scanner; do bash scripts/images.sh smoke "$service"; done

passed=$(grep -oE 'ℹ pass [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
failed=$(grep -oE 'ℹ fail [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
skipped=$(grep -oE 'ℹ skipped [0-9]+' "$log" | awk '{s+=$3} END {print s+0}')
step "done in $((SECONDS - started)) s"
if [ "$skipped" -gt 0 ]; then
  echo "NOTE: $skipped test(s) skipped — see the SKIPPING lines above for why"
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$tests_rc" -eq 0 ] && [ "$failed" -eq 0 ]
