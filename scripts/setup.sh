#!/usr/bin/env bash
# Sets this machine up for composure, idempotently, and fast when everything is there (one
# dpkg-query, one `docker version`, two mtimes, the image cache check): installs the missing
# Debian/Ubuntu packages, starts dockerd when none answers, runs `npm ci` when node_modules is
# missing or older than package.json / package-lock.json, and builds the named fixture images.
# `make demo` and `make test` run it first (make setup-demo / setup-test), `.ci/run` too.
#   bash scripts/setup.sh [restic] [rclone] [image ...]   restic/rclone: the pinned builds (Go module
#                                         proxy, cached by version); images from test/images/
#                                         (cached by recipe hash); none: no image
# As root it does the work; otherwise it prints the exact command to run and exits 1 without
# asking anything, so it never waits on a prompt. COMPOSURE_SETUP_IMAGES=0 skips the images.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
step() { printf '\n=== setup: %s (%s)\n' "$*" "$(date -u +%H:%M:%S)"; }
fail() {
  printf 'setup: %s\n' "$@" >&2
  exit 1
}
root=false
[ "$(id -u)" -eq 0 ] && root=true
as_root() { if $root; then printf '%s' "$*"; else printf 'sudo %s' "$*"; fi; }

# --- packages: the engine, Compose, busybox for the helper image, zstd, rclone, age, and what the
# fixture images, the monitoring tests, the terminal tests (tmux) and the append-only remote tests
# (OpenSSH's sshd, run by the test itself on 127.0.0.1) use. Node 20 with npm too, when the distribution has it.
packages=(docker.io docker-compose busybox-static zstd rclone age debootstrap prometheus prometheus-node-exporter tmux openssh-server)
if command -v dpkg-query >/dev/null 2>&1; then
  installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' "${packages[@]}" 2>/dev/null || true)
  missing=()
  for package in "${packages[@]}"; do
    grep -qx "$package installed" <<<"$installed" || missing+=("$package")
  done
  node_ok=false
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' && node_ok=true
  if ! $node_ok; then
    $root && apt-get update -qq
    candidate=$(apt-cache policy nodejs 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [[ "$candidate" =~ ^([0-9]+:)?([0-9]+)\. ]] && [ "${BASH_REMATCH[2]}" -ge 20 ]; then
      missing+=(nodejs npm)
    else
      fail "composure needs Node.js 20 or newer with npm, and this distribution's nodejs package is ${candidate:-unknown}:" \
        "install it from https://nodejs.org/en/download (or NodeSource), then run this again"
    fi
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    if ! $root; then
      fail "missing packages: ${missing[*]}. Install them as root, then run this again:" \
        "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" \
        "or let the set-up do all of it: sudo bash scripts/setup.sh"
    fi
    step "apt-get install ${missing[*]}"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
      # Installed for the tests, which start their own sshd: the system sshd on port 22 the package starts stays off.
      systemctl disable --now ssh.service >/dev/null 2>&1 || true
    fi
  fi
else
  # Not Debian/Ubuntu: check the commands and name what to install.
  absent=()
  for command in docker zstd rclone age busybox node npm; do command -v "$command" >/dev/null 2>&1 || absent+=("$command"); done
  [ ${#absent[@]} -eq 0 ] || fail "not a Debian/Ubuntu system (no dpkg) and these commands are missing: ${absent[*]}." \
    "Install them with this system's package manager (Docker engine with Compose, zstd, rclone, age, a static busybox, Node.js 20 with npm), then run this again"
fi

# --- the engine: one `docker version`; start dockerd only for this machine's own socket.
default_socket=/var/run/docker.sock
engine_answer() { answer=$(timeout 20 docker version --format '{{.Server.Version}}' 2>&1); }
if ! engine_answer; then
  [ -n "$answer" ] || answer="no answer within 20 s"
  reason=${answer##*$'\n'}
  if [ -n "${DOCKER_HOST:-}" ] && [ "$DOCKER_HOST" != "unix://$default_socket" ]; then
    fail "the Docker engine at $DOCKER_HOST (DOCKER_HOST) does not answer: $reason" \
      "Start the engine DOCKER_HOST names, or unset DOCKER_HOST to use this machine's dockerd (this set-up starts it as root)"
  fi
  if [ -S "$default_socket" ] && ! [ -w "$default_socket" ]; then
    fail "you may not use the Docker engine's socket $default_socket: $reason" \
      "Join the docker group and log in again: sudo usermod -aG docker $(id -un)   (or run as root)"
  fi
  if running=$(pgrep -x dockerd | head -1) && [ -n "$running" ]; then
    fail "dockerd runs (pid $running) but does not answer at unix://$default_socket: $reason" \
      "It may be starting or hung: check its log (journalctl -u docker, or /var/log/composure-dockerd.log), or restart it: $(as_root systemctl restart docker)"
  fi
  if ! $root; then
    start="sudo sh -c 'nohup dockerd >/var/log/composure-dockerd.log 2>&1 &'"
    [ -d /run/systemd/system ] && start="sudo systemctl start docker"
    fail "no Docker engine answers at unix://$default_socket (DOCKER_HOST unset): $reason" \
      "Start it: $start" "or let the set-up do it: sudo bash scripts/setup.sh"
  fi
  step "starting dockerd"
  if [ -d /run/systemd/system ] && systemctl cat docker.service >/dev/null 2>&1; then
    timeout 90 systemctl start docker || true
  else
    (nohup dockerd >/var/log/composure-dockerd.log 2>&1 &)
  fi
  for _ in $(seq 1 60); do engine_answer && break; sleep 1; done
  if ! engine_answer; then
    tail -30 /var/log/composure-dockerd.log 2>/dev/null || journalctl -u docker -n 30 --no-pager 2>/dev/null || true
    fail "dockerd did not start within 60 s (its log is above): $answer"
  fi
fi
engine_version=$answer

# --- npm packages
if ! [ -d node_modules ] || ! [ node_modules -nt package-lock.json ] || ! [ node_modules -nt package.json ]; then
  step "npm ci"
  npm ci --no-audit --no-fund --loglevel=error
  touch node_modules
fi

# --- restic for the repository engine, when asked for ("restic" among the arguments): the pinned
# version built from the Go module proxy (Debian's is too old), cached by version where
# scripts/lib/store/restic.ts looks for it. RESTIC=<binary> uses the operator's own instead.
images=()
for name in "$@"; do
  case "$name" in
    restic) want_restic=true ;;
    rclone) want_rclone=true ;;
    *) images+=("$name") ;;
  esac
done
# pinned_go_tool NAME SOURCE CONSTANT MODULE HINT: builds the version SOURCE's `export const
# CONSTANT = "x.y.z"` names from the Go module proxy, once, into the cache folder composure looks
# in (static, CGO off); HINT says what else to do when Go is missing. Prints the version.
pinned_go_tool() {
  local name=$1 source=$2 constant=$3 module=$4 hint=$5
  local version dir
  version=$(sed -n "s/^export const $constant = \"\(.*\)\";/\1/p" "$source")
  dir="${XDG_CACHE_HOME:-$HOME/.cache}/composure/tools/$name-$version"
  if ! [ -x "$dir/$name" ]; then
    command -v go >/dev/null 2>&1 || fail "$name $version is built with Go, and go is not installed: install Go 1.24 or newer (apt-get install golang-go), or $hint"
    step "building $name $version (Go module proxy, once per version)" >&2
    mkdir -p "$dir.partial"
    CGO_ENABLED=0 GOBIN="$dir.partial" GOFLAGS=-trimpath go install "$module@v$version" >&2
    rm -rf "$dir" && mv "$dir.partial" "$dir"
  fi
  printf '%s' "$version"
}

if [ "${want_restic:-false}" = true ] && [ -z "${RESTIC:-}" ]; then
  restic_note=", restic $(pinned_go_tool restic scripts/lib/store/restic.ts pinnedResticVersion github.com/restic/restic/cmd/restic "point RESTIC= at a restic 0.17 or newer binary")"
fi

# --- rclone for S3 remotes, when asked for ("rclone" among the arguments): Debian's rclone 1.60
# cannot talk to S3 on hosts that set AWS_CA_BUNDLE, so the pinned version is built from the Go
# module proxy, cached by version where scripts/lib/remote/rclone-binary.ts looks for it.
# RCLONE=<binary> uses the operator's own instead.
if [ "${want_rclone:-false}" = true ] && [ -z "${RCLONE:-}" ]; then
  rclone_note=", rclone $(pinned_go_tool rclone scripts/lib/remote/rclone-binary.ts pinnedRcloneVersion github.com/rclone/rclone "point RCLONE= at an rclone 1.65 or newer binary")"
fi

# --- fixture images the command needs (test/images/build.sh: cached by recipe hash, about 0.2 s each when cached)
if [ ${#images[@]} -gt 0 ] && [ "${COMPOSURE_SETUP_IMAGES:-1}" != 0 ]; then
  bash test/images/build.sh "${images[@]}"
fi
printf 'setup: ready (packages, Docker engine %s, node_modules%s%s%s)\n' "$engine_version" "${restic_note:-}" "${rclone_note:-}" "${images[*]:+, images: ${images[*]}}"
