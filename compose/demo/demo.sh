#!/usr/bin/env bash
# make demo: build the image the demo needs, start the demo stack, write sample data into its
# volumes, then run composure's backup and verify on it and show where the archives are.
set -euo pipefail
cd "$(dirname "$0")/../.."
project=${DEMO_PROJECT:-composure-demo}
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)

bash test/images/build.sh busybox
"${compose[@]}" -p "$project" -f compose/demo/compose.yml up -d
docker exec "$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q web)" sh -c \
  'echo "<h1>composure demo</h1>" > /www/index.html; mkdir -p /www/assets; for i in $(seq 1 200); do echo "asset $i" > /www/assets/$i.txt; done'
docker exec "$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q worker)" sh -c \
  'echo "shared between web and worker" > /shared/motd; dd if=/dev/urandom of=/data/blob.bin bs=1M count=8 2>/dev/null'

PROJECT=$project node --import tsx scripts/backup.ts
PROJECT=$project node --import tsx scripts/verify.ts
PROJECT=$project node --import tsx scripts/list.ts
echo
echo "Archives: $(pwd)/backups/$project/ (manifest.json in each run)."
echo "Try: make restore PROJECT=$project SERVICE=web DRY_RUN=1   |   make demo-down to remove the stack"
