# Shared by the top-level scripts: where Node 24 lives and small output helpers.
# shellcheck shell=bash
MOAT_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MOAT_NODE_VERSION=${MOAT_NODE_VERSION:-24.21.0}
MOAT_NODE_DIR=${MOAT_NODE_DIR:-/opt/moat/node}
# The node binary the project runs on: Node 24 from the npm registry when the system's is older.
if [ -x "$MOAT_NODE_DIR/bin/node" ]; then export PATH="$MOAT_NODE_DIR/bin:$PATH"; fi
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
