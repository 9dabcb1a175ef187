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
step "browse from the LAN through the proxy (moat-lan → 10.70.1.1:3128)"
echo "allowed.test: HTTP $(bin/moat lab exec lan -- curl -s -o /dev/null -w '%{http_code}' -x http://10.70.1.1:3128 http://allowed.test/)"
echo "casino.test (category gambling):"
bin/moat lab exec lan -- curl -s -x http://10.70.1.1:3128 http://casino.test/ | sed 's/^/    /'
cat <<MSG

The lab is up. Try:
  bin/moatctl history            bin/moatctl get
  bin/moat lab status            bin/moat lab exec lan -- curl -s -x http://10.70.1.1:3128 http://allowed.test/
  grep <trace-id> /run/moat-lab/otel/traces.jsonl     (the blocked request's trace)
Stop it with: sudo bin/moat lab down
MSG
