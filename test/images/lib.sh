# Shared functions for test/images/build.sh and the recipes it runs.
# A recipe is test/images/<name>/build: an executable that receives the tag to produce in $TAG and
# a scratch directory in $WORK; a recipe folder holding a file `uses-base` gets the shared Debian
# rootfs image (tag in $BASE_TAG) built first. Its hash covers every file in its folder, this
# file, and the base recipe if used.

FIXTURE_PREFIX=${COMPOSURE_FIXTURE_PREFIX:-composure-fixture}
CACHE_DIR=${COMPOSURE_CACHE:-$HOME/.cache/composure}
IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

log() { printf '%s images: %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

# Hash of every file of a recipe folder (names and contents), plus lib.sh.
recipe_hash() {
  local dir="$IMAGES_DIR/$1"
  { (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum); sha256sum < "$IMAGES_DIR/lib.sh"; \
    if [ -f "$dir/uses-base" ]; then recipe_hash base; fi; } | sha256sum | cut -c1-12
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_image() {
  local name=$1 hash tag work
  [ -x "$IMAGES_DIR/$name/build" ] || { log "no recipe test/images/$name/build"; return 1; }
  if [ -f "$IMAGES_DIR/$name/uses-base" ]; then build_image base; fi
  hash=$(recipe_hash "$name")
  tag="$FIXTURE_PREFIX/$name:$hash"
  if image_exists "$tag"; then
    docker tag "$tag" "$FIXTURE_PREFIX/$name:latest"
    log "$name: cached ($tag)"
    return 0
  fi
  work=$(mktemp -d)
  log "$name: building $tag"
  local started=$SECONDS
  TAG="$tag" WORK="$work" BASE_TAG="$FIXTURE_PREFIX/base:latest" CACHE_DIR="$CACHE_DIR" \
    "$IMAGES_DIR/$name/build"
  rm -rf "$work"
  docker tag "$tag" "$FIXTURE_PREFIX/$name:latest"
  log "$name: built in $((SECONDS - started)) s"
}
