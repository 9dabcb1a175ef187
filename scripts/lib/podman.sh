# shellcheck shell=bash
# Shared helpers for scripts that drive rootless Podman.
#
# Source it from a script that already runs with `set -euo pipefail`:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib/podman.sh"
#   moat_podman_setup          # once: build user, subuid/subgid, config files
#   moat_podman images         # podman as the build user, never rootful
#   moat_podman_teardown       # stop the rootless pause process if we started it
#
# Podman always runs rootless. Called as root, the helpers drop to the build
# user ($MOAT_BUILD_USER, default `moatbuild`) and create it when missing;
# called as any other user, they run Podman as that user. Rootful Podman turns
# its default network into a host bridge with NAT rules on the host: never.

MOAT_BUILD_USER="${MOAT_BUILD_USER:-moatbuild}"

# Host packages the rootless container stack needs (Debian names).
MOAT_PODMAN_PACKAGES=(podman buildah debootstrap fuse-overlayfs uidmap slirp4netns runc)

# log MESSAGE... — one progress line on stderr, prefixed by the calling script's tag.
log() { printf '[%s] %s\n' "${MOAT_LOG_TAG:-moat}" "$*" >&2; }

# die MESSAGE... — print an error and exit non-zero.
die() { printf '[%s] error: %s\n' "${MOAT_LOG_TAG:-moat}" "$*" >&2; exit 1; }

# moat_now — seconds since the epoch with a fraction, for timings.
moat_now() { date +%s.%N; }

# moat_elapsed START — seconds since START (from moat_now), one decimal.
moat_elapsed() { awk -v s="$1" -v e="$(moat_now)" 'BEGIN { printf "%.1f", e - s }'; }

# moat_ensure_apt_packages PKG... — apt-get install whatever is missing (root only).
moat_ensure_apt_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing Debian packages: ${missing[*]} (install them as root)"
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# moat_build_user — the user Podman runs as (the build user when root, else self).
moat_build_user() {
  if [[ $EUID -eq 0 ]]; then echo "$MOAT_BUILD_USER"; else id -un; fi
}

# moat_build_home — the home directory of moat_build_user.
moat_build_home() { getent passwd "$(moat_build_user)" | cut -d: -f6; }

# moat_runtime_dir — XDG_RUNTIME_DIR for the build user (created by moat_podman_setup).
moat_runtime_dir() {
  if [[ $EUID -eq 0 ]]; then
    echo "/run/user/$(id -u "$MOAT_BUILD_USER")"
  else
    echo "${XDG_RUNTIME_DIR:-/run/user/$(id -u)}"
  fi
}

# _moat_add_subids USER — give USER a 65536-wide subuid/subgid range after every existing one.
_moat_add_subids() {
  local user="$1" start
  start=$(cat /etc/subuid /etc/subgid 2>/dev/null |
    awk -F: 'BEGIN { m = 100000 } NF == 3 { e = $2 + $3; if (e > m) m = e } END { print m }')
  usermod --add-subuids "${start}-$((start + 65535))" --add-subgids "${start}-$((start + 65535))" "$user"
  log "gave $user subordinate ids ${start}-$((start + 65535))"
}

# _moat_write_if_changed FILE OWNER — write stdin to FILE (owned by OWNER) only when it differs.
_moat_write_if_changed() {
  local file="$1" owner="$2" tmp
  tmp=$(mktemp)
  cat >"$tmp"
  # the directories too belong to OWNER: `install -D` would leave them root's, and Podman, running
  # as OWNER, could then not create ~/.config/cni beside them (a new build user hit exactly that).
  # Also when FILE is unchanged: an older run may have left the directories root's.
  local dir parent
  dir=$(dirname "$file")
  parent=$(dirname "$dir")
  install -d -m 0755 -o "$owner" -g "$owner" "$parent" "$dir"
  if [[ -f "$file" ]] && cmp -s "$tmp" "$file"; then rm -f "$tmp"; return 0; fi
  install -m 0644 -o "$owner" -g "$owner" "$tmp" "$file"
  rm -f "$tmp"
  log "wrote $file"
}

# moat_podman_setup — idempotent: host packages, build user, subids, containers.conf,
# storage.conf and the runtime directory. Safe to call on every run.
moat_podman_setup() {
  local user home rt
  if [[ $EUID -eq 0 ]]; then
    moat_ensure_apt_packages "${MOAT_PODMAN_PACKAGES[@]}"
    user="$MOAT_BUILD_USER"
    if ! id "$user" >/dev/null 2>&1; then
      useradd --system --create-home --home-dir "/var/lib/$user" --shell /usr/sbin/nologin \
        --comment "Moat rootless image builder" "$user"
      log "created build user $user"
    fi
    if ! grep -q "^$user:" /etc/subuid 2>/dev/null || ! grep -q "^$user:" /etc/subgid 2>/dev/null; then
      _moat_add_subids "$user"
    fi
  else
    user=$(id -un)
    grep -q "^$user:" /etc/subuid 2>/dev/null ||
      die "$user has no range in /etc/subuid; run as root once, or: usermod --add-subuids/--add-subgids"
  fi
  home=$(moat_build_home)

  # crun fails on this kernel's hybrid cgroups; runc + cgroupfs works rootless.
  _moat_write_if_changed "$home/.config/containers/containers.conf" "$user" <<'EOF'
# Written by scripts/lib/podman.sh — rootless Podman for Moat image builds.
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  # Without this Podman falls back to vfs: every container start copies the image.
  _moat_write_if_changed "$home/.config/containers/storage.conf" "$user" <<'EOF'
# Written by scripts/lib/podman.sh — rootless Podman for Moat image builds.
[storage]
driver = "overlay"
EOF

  rt=$(moat_runtime_dir)
  if [[ ! -d "$rt" ]]; then
    if [[ $EUID -eq 0 ]]; then
      install -d -m 0700 -o "$user" -g "$(id -g "$user")" "$rt"
    else
      mkdir -p "$rt" && chmod 0700 "$rt"
    fi
  fi
  # Remember whether a rootless pause process was already running: we only stop ours.
  MOAT_PAUSE_PREEXISTING=0
  if _moat_pause_pid >/dev/null; then
    MOAT_PAUSE_PREEXISTING=1
  else
    # A pause.pid naming a process that is gone makes Podman 4.3 fail ("cannot re-exec process
    # to join the existing user namespace") instead of starting a new one: drop it.
    rm -f "$rt/libpod/tmp/pause.pid"
  fi
}

# moat_as_build_user CMD... — run CMD as the build user, in its home, with a clean env.
moat_as_build_user() {
  local home rt
  home=$(moat_build_home)
  rt=$(moat_runtime_dir)
  if [[ $EUID -eq 0 ]]; then
    (cd "$home" && runuser -u "$MOAT_BUILD_USER" -- env -i \
      HOME="$home" USER="$MOAT_BUILD_USER" LOGNAME="$MOAT_BUILD_USER" \
      XDG_RUNTIME_DIR="$rt" PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      LANG=C.UTF-8 TERM="${TERM:-dumb}" "$@")
  else
    XDG_RUNTIME_DIR="$rt" "$@"
  fi
}

# moat_podman ARGS... — rootless podman as the build user. Warnings are
# silenced ("/" is not a shared mount is harmless here); errors still print.
moat_podman() { moat_as_build_user podman --log-level=error "$@"; }

# moat_podman_image_exists REF — true when REF is in the build user's image store.
moat_podman_image_exists() { moat_podman image exists "$1"; }

# moat_stage_dir — make a fresh empty directory the build user owns (a build context) and print it.
moat_stage_dir() {
  local d
  d=$(mktemp -d "${TMPDIR:-/tmp}/moat-ctx.XXXXXX")
  [[ $EUID -eq 0 ]] && chown "$MOAT_BUILD_USER:" "$d"
  chmod 0755 "$d"
  echo "$d"
}

# moat_chown_build_user PATH... — hand PATHs (recursively) to the build user (no-op unless root).
moat_chown_build_user() {
  [[ $EUID -eq 0 ]] || return 0
  chown -R "$MOAT_BUILD_USER:" "$@"
}

# _moat_pause_pid — print the PID of the build user's rootless pause process, if alive.
_moat_pause_pid() {
  local f pid
  f="$(moat_runtime_dir)/libpod/tmp/pause.pid"
  [[ -r "$f" ]] || return 1
  pid=$(<"$f")
  # Alive and not a zombie waiting to be reaped.
  [[ -n "$pid" && -r "/proc/$pid/stat" ]] || return 1
  [[ "$(awk '{ print $3 }' "/proc/$pid/stat")" != Z ]] || return 1
  echo "$pid"
}

# moat_podman_teardown — stop the rootless pause process when this run started it.
moat_podman_teardown() {
  local pid i
  [[ "${MOAT_PAUSE_PREEXISTING:-1}" == 0 ]] || return 0
  pid=$(_moat_pause_pid) || return 0
  kill "$pid" 2>/dev/null || true
  # and its pid file, once it is gone (see moat_podman_setup)
  for ((i = 0; i < 50; i++)); do _moat_pause_pid >/dev/null || break; sleep 0.1; done
  _moat_pause_pid >/dev/null || rm -f "$(moat_runtime_dir)/libpod/tmp/pause.pid"
}
