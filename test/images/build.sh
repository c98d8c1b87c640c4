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
for name in "${IMAGES[@]}"; do
  build_image "$name"
done
