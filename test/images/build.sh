#!/usr/bin/env bash
# Builds the fixture images the tests and the demo need, from packages only (no registry).
# Each image is tagged <prefix>/<name>:<recipe hash> and <prefix>/<name>:latest; an image whose
# recipe hash is already tagged is skipped, so a warm machine builds nothing.
#   test/images/build.sh [name ...]     (default: every image listed in IMAGES below)
# Environment: COMPOSURE_FIXTURE_PREFIX (default composure-fixture), COMPOSURE_CACHE (base rootfs
# cache, default ~/.cache/composure), DEBIAN_MIRROR (default http://deb.debian.org/debian).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

IMAGES=(busybox postgres mariadb sqlite redis prometheus victoriametrics cassandra opensearch)
[ $# -gt 0 ] && IMAGES=("$@")

# Every recipe talks to the engine: without one, say so now (an absent image would otherwise be
# "built" against nothing). The timeout covers a daemon that accepts and never answers.
if ! answer=$(timeout 15 docker version --format '{{.Server.Version}}' 2>&1); then
  [ -n "$answer" ] || answer="no answer within 15 s"
  if [ -n "${DOCKER_HOST:-}" ]; then engine="$DOCKER_HOST (DOCKER_HOST)"; else engine="unix:///var/run/docker.sock (DOCKER_HOST unset)"; fi
  log "cannot reach the Docker engine at $engine: ${answer##*$'\n'}"
  log "start dockerd (as root: bash scripts/setup.sh, which installs and starts it), or point DOCKER_HOST at an engine that runs"
  exit 1
fi
for name in "${IMAGES[@]}"; do
  build_image "$name"
done
