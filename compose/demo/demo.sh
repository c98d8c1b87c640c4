#!/usr/bin/env bash
# make demo: start the demo stack, write sample data into its volumes, then run composure's backup
# and verify on it and show where the archives are. `make demo` runs scripts/setup.sh first
# (packages, dockerd, npm ci, the images DEMO_IMAGES names) and bundles the commands (dist/).
set -euo pipefail
cd "$(dirname "$0")/../.."
project=${DEMO_PROJECT:-composure-demo}
compose=(docker-compose)
docker compose version >/dev/null 2>&1 && compose=(docker compose)

"${compose[@]}" -p "$project" -f compose/demo/compose.yml up -d
docker exec "$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q web)" sh -c \
  'echo "<h1>composure demo</h1>" > /www/index.html; mkdir -p /www/assets; for i in $(seq 1 200); do echo "asset $i" > /www/assets/$i.txt; done'
docker exec "$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q worker)" sh -c \
  'echo "shared between web and worker" > /shared/motd; dd if=/dev/urandom of=/data/blob.bin bs=1M count=8 2>/dev/null'
# The databases initialise on their first start: wait until they answer over TCP (the set-up
# server listens on the socket only), then give them a table of sample rows.
db=$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q db)
mariadb=$("${compose[@]}" -p "$project" -f compose/demo/compose.yml ps -q mariadb)
for _ in $(seq 1 120); do docker exec "$db" pg_isready -q -h 127.0.0.1 && break; sleep 1; done
docker exec "$db" psql -q -U postgres -d shop -c \
  'CREATE TABLE IF NOT EXISTS orders AS SELECT g AS id, md5(g::text) AS note FROM generate_series(1, 10000) g'
for _ in $(seq 1 120); do
  docker exec "$mariadb" sh -c 'MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb -uroot -h 127.0.0.1 -e "SELECT 1"' >/dev/null 2>&1 && break
  sleep 1
done
docker exec "$mariadb" sh -c 'MYSQL_PWD=$MARIADB_ROOT_PASSWORD mariadb -uroot blog -e \
  "CREATE TABLE IF NOT EXISTS posts (id INT PRIMARY KEY, title CHAR(32)) SELECT seq AS id, MD5(seq) AS title FROM seq_1_to_10000"'

PROJECT=$project node dist/backup.mjs
PROJECT=$project node dist/verify.mjs
PROJECT=$project node dist/list.mjs
echo
echo "Archives: ${DESTINATION:-$(pwd)/backups}/$project/ (manifest.json in each run)."
echo "Try: make restore PROJECT=$project SERVICE=web DRY_RUN=1   |   make demo-down to remove the stack"
