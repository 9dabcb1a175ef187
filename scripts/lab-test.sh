#!/usr/bin/env bash
# Smoke test of the embedded lab: build the moat CLI, bring the lab up, fetch
# from the origin through the gateway, show status, tear everything down.
# Needs root (network namespaces). Usage: sudo scripts/lab-test.sh [moat lab up flags…]
#   e.g. sudo scripts/lab-test.sh --no-services   (NATS, Redis and origin only)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
moat=(node "$repo/packages/moat-cli/dist/main.js")

if [[ $EUID -ne 0 ]]; then
  echo "lab-test: needs root (network namespaces): run with sudo" >&2
  exit 2
fi

npm run build --prefix "$repo" --workspace @moat/cli >/dev/null

# Always leave the host as we found it.
trap '"${moat[@]}" lab down >/dev/null || true' EXIT

"${moat[@]}" lab up "$@"
"${moat[@]}" lab status
"${moat[@]}" lab exec lan -- curl -fsS -m 5 -o /dev/null -w 'lan → origin: HTTP %{http_code}, %{size_download} bytes\n' \
  http://192.0.2.10/bytes/100000
"${moat[@]}" lab exec remote -- curl -fsS -m 5 -o /dev/null -w 'remote → wan origin: HTTP %{http_code}\n' \
  http://203.0.113.2/
echo "lab-test: ok"
