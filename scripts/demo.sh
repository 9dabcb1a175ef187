#!/usr/bin/env bash
# One command from a fresh machine to a running lab: setup, `moat lab up`, apply the demo policy,
# and show every service healthy on it. Leaves the lab running (`sudo bin/moat lab down` stops it).
set -euo pipefail
# shellcheck source=lib/env.sh
source "$(dirname "$0")/lib/env.sh"
cd "$MOAT_ROOT"
[ "$(id -u)" = 0 ] || die "the lab builds network namespaces: run as root (sudo scripts/demo.sh)"
bash scripts/setup.sh
step "lab up"
bin/moat lab up
step "apply the demo policy"
bin/moatctl apply -f examples/policies/demo.yaml -m "demo policy" --wait
step "status"
bin/moatctl status
cat <<MSG

The lab is up. Try:
  bin/moatctl history            bin/moatctl get
  bin/moat lab status            bin/moat lab exec lan -- curl -s http://192.0.2.10/
Stop it with: sudo bin/moat lab down
MSG
