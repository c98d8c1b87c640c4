#!/usr/bin/env bash
# Entrypoint of the postgres fixture image. Same contract as the official postgres image:
#   POSTGRES_PASSWORD        superuser password; required unless POSTGRES_HOST_AUTH_METHOD=trust
#   POSTGRES_USER            superuser name (default postgres); initdb creates it, so with another
#                            name there is no "postgres" role at all
#   POSTGRES_DB              database created on first start (default: $POSTGRES_USER)
#   POSTGRES_INITDB_ARGS     extra initdb arguments;  POSTGRES_INITDB_WALDIR  separate WAL directory
#   POSTGRES_HOST_AUTH_METHOD  auth for non-local TCP clients (default scram-sha-256)
#   each of the first three may instead be given as <NAME>_FILE, the path of a file holding it
# On first start (no $PGDATA/PG_VERSION) it runs initdb as user postgres, creates the database, runs
# /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz on a socket-only server, then starts postgres.
# Local socket and 127.0.0.1 connections are trusted; other addresses need the password.
set -Eeuo pipefail

say() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { say "error: $*" >&2; exit 1; }

# Sets $1 from $1 or from the file named by ${1}_FILE (not both), else to the default $2.
from_env_or_file() {
  local name=$1 file_name="${1}_FILE" value=${2:-}
  if [ -n "${!name:-}" ] && [ -n "${!file_name:-}" ]; then die "set $name or $file_name, not both"; fi
  if [ -n "${!name:-}" ]; then value=${!name}
  elif [ -n "${!file_name:-}" ]; then value=$(<"${!file_name}"); fi
  export "$name=$value"
  unset "$file_name"
}

# Runs psql on the local socket as the superuser; extra arguments are passed on.
sql() {
  psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password --username "$POSTGRES_USER" "$@"
}

run_init_file() {
  local f=$1
  case "$f" in
    *.sh)
      if [ -x "$f" ]; then say "running $f"; "$f"
      else say "sourcing $f"; . "$f"; fi ;;
    *.sql)    say "running $f"; sql --dbname "$POSTGRES_DB" -f "$f" ;;
    *.sql.gz) say "running $f"; gzip -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
    *.sql.xz) say "running $f"; xz -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
    *.sql.zst) say "running $f"; zstd -dc "$f" | sql --dbname "$POSTGRES_DB" ;;
    *)        say "ignoring $f" ;;
  esac
}

first_start() {
  from_env_or_file POSTGRES_PASSWORD
  from_env_or_file POSTGRES_USER postgres
  from_env_or_file POSTGRES_DB "$POSTGRES_USER"
  local auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
  if [ -z "$POSTGRES_PASSWORD" ] && [ "$auth" != trust ]; then
    die "the database is not initialized and POSTGRES_PASSWORD is empty: set POSTGRES_PASSWORD" \
        "(or POSTGRES_PASSWORD_FILE), or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection" \
        "without a password"
  fi
  [ "$auth" = trust ] && say "warning: POSTGRES_HOST_AUTH_METHOD=trust: no password is asked from anyone"

  local args=(--username="$POSTGRES_USER")
  [ -n "${POSTGRES_INITDB_WALDIR:-}" ] && args+=(--waldir="$POSTGRES_INITDB_WALDIR")
  local pwfile=
  if [ -n "$POSTGRES_PASSWORD" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    args+=(--pwfile="$pwfile")
  fi
  # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is a word list on purpose
  initdb "${args[@]}" ${POSTGRES_INITDB_ARGS:-}
  [ -n "$pwfile" ] && rm -f "$pwfile"
  # initdb trusts the local socket and loopback; everything else must authenticate.
  printf '\n# added by the image entrypoint\nhost all all all %s\n' "$auth" >> "$PGDATA/pg_hba.conf"

  # A server reachable only through the socket, for the set-up steps.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w -t 60 start >/dev/null
  export PGPASSWORD=$POSTGRES_PASSWORD
  if [ "$POSTGRES_DB" != postgres ]; then
    sql --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    say "created database $POSTGRES_DB"
  fi
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] && run_init_file "$f"
  done
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  unset PGPASSWORD
  say "initialization done; starting postgres"
}

# `docker run image -c x=y` means postgres with those options.
if [ "${1:-}" ] && [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

if [ "${1:-}" = postgres ] && ! printf '%s\n' "$@" | grep -qE '^(--help|--describe-config|-C|--version|-V)$'; then
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA" || true
    chmod 3777 /var/run/postgresql
    if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
      mkdir -p "$POSTGRES_INITDB_WALDIR"; chown postgres:postgres "$POSTGRES_INITDB_WALDIR"
    fi
    # Files left by another user (e.g. a restore run as root) become postgres' too.
    find "$PGDATA" \! -user postgres -exec chown postgres:postgres {} +
    HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
  fi
  if [ -s "$PGDATA/PG_VERSION" ]; then
    say "database directory $PGDATA already initialized: no set-up"
  else
    first_start
  fi
fi

exec "$@"
