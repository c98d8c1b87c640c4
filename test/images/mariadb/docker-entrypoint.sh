#!/usr/bin/env bash
# Entrypoint of the mariadb fixture image. Same contract as the official mariadb image; every
# MARIADB_<X> may also be given as MYSQL_<X>, and either as <NAME>_FILE (path of a file holding it):
#   MARIADB_ROOT_PASSWORD        root password (for root@localhost and root@$MARIADB_ROOT_HOST)
#   MARIADB_ALLOW_EMPTY_ROOT_PASSWORD / MARIADB_RANDOM_ROOT_PASSWORD   the alternatives to it
#                                (MYSQL_ALLOW_EMPTY_PASSWORD / MYSQL_RANDOM_ROOT_PASSWORD too)
#   MARIADB_ROOT_HOST            host part of the second root account (default %)
#   MARIADB_DATABASE             database created on first start
#   MARIADB_USER, MARIADB_PASSWORD   account created on first start, with all rights on that database
#   MARIADB_INITDB_SKIP_TZINFO   skip loading the time zone tables
# On first start (no <datadir>/mysql) it runs mariadb-install-db, sets the accounts up on a server
# with networking off, runs /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz, then starts the
# server as user mysql. root needs its password, through the socket as well as over TCP.
set -Eeuo pipefail

say() { printf '%s [entrypoint] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$*"; }
die() { say "error: $*" >&2; exit 1; }

# Exports MARIADB_$1 from the first set of MARIADB_$1, MARIADB_$1_FILE, then each further name
# given (MYSQL_* aliases) and its _FILE; empty when none is set.
resolve_env() {
  local key=$1 name value= found=
  shift
  for name in "MARIADB_$key" "$@"; do
    if [ -n "${!name:-}" ]; then value=${!name}; found=1
    else
      local file_name="${name}_FILE"
      if [ -n "${!file_name:-}" ]; then value=$(<"${!file_name}"); found=1; fi
    fi
    [ -n "$found" ] && break
  done
  export "MARIADB_$key=$value"
}

sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\\\'}; printf "'%s'" "$s"; }
sql_name() { printf '`%s`' "${1//\`/\`\`}"; }

# The server's effective setting $1 for the command line in the remaining arguments.
server_setting() {
  local key=$1; shift
  "$@" --verbose --help 2>/dev/null | awk -v k="$key" '$1 == k { print $2; exit }'
}

SOCKET=/run/mysqld/mysqld.sock
client() { mariadb --protocol=socket --socket="$SOCKET" -uroot "$@"; }

run_init_file() {
  local f=$1
  case "$f" in
    *.sh)
      if [ -x "$f" ]; then say "running $f"; "$f"
      else say "sourcing $f"; . "$f"; fi ;;
    *.sql)     say "running $f"; client ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} < "$f" ;;
    *.sql.gz)  say "running $f"; gzip -dc "$f" | client ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
    *.sql.xz)  say "running $f"; xz -dc "$f" | client ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
    *.sql.zst) say "running $f"; zstd -dc "$f" | client ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
    *)         say "ignoring $f" ;;
  esac
}

first_start() {
  local datadir=$1; shift
  resolve_env ROOT_PASSWORD MYSQL_ROOT_PASSWORD
  resolve_env ALLOW_EMPTY_ROOT_PASSWORD MYSQL_ALLOW_EMPTY_PASSWORD
  resolve_env RANDOM_ROOT_PASSWORD MYSQL_RANDOM_ROOT_PASSWORD
  resolve_env ROOT_HOST MYSQL_ROOT_HOST
  resolve_env DATABASE MYSQL_DATABASE
  resolve_env USER MYSQL_USER
  resolve_env PASSWORD MYSQL_PASSWORD
  resolve_env INITDB_SKIP_TZINFO MYSQL_INITDB_SKIP_TZINFO
  : "${MARIADB_ROOT_HOST:=%}"
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ] \
     && [ -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    die "the database is not initialized and no root password is given: set MARIADB_ROOT_PASSWORD" \
        "(or MYSQL_ROOT_PASSWORD, or a _FILE variant), MARIADB_ALLOW_EMPTY_ROOT_PASSWORD or" \
        "MARIADB_RANDOM_ROOT_PASSWORD"
  fi
  if [ -n "$MARIADB_USER" ] && [ -z "$MARIADB_PASSWORD" ]; then
    die "MARIADB_USER is set without MARIADB_PASSWORD"
  fi
  [ "$MARIADB_USER" = root ] && die "MARIADB_USER=root: set MARIADB_ROOT_PASSWORD for root instead"
  if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]; then
    MARIADB_ROOT_PASSWORD=$(head -c 24 /dev/urandom | base64 | tr -d '/+=')
    say "GENERATED ROOT PASSWORD: $MARIADB_ROOT_PASSWORD"
  fi

  say "initializing $datadir"
  local log
  log=$(mktemp)
  mariadb-install-db --datadir="$datadir" --rpm --auth-root-authentication-method=normal \
    --skip-test-db --skip-name-resolve >"$log" 2>&1 || { cat "$log" >&2; die "mariadb-install-db failed"; }
  rm -f "$log"
  # A server without networking, for the set-up steps.
  "$@" --skip-networking --socket="$SOCKET" --loose-wsrep-on=OFF --skip-log-bin \
    --loose-innodb-buffer-pool-load-at-startup=0 &
  local pid=$! i
  for i in $(seq 120); do
    client -e 'SELECT 1' >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || die "the set-up server stopped"
    sleep 0.5
  done
  client -e 'SELECT 1' >/dev/null || die "the set-up server did not answer"

  if [ -z "$MARIADB_INITDB_SKIP_TZINFO" ]; then
    # The time zone tables, as a server with named zones would have them.
    mariadb-tzinfo-to-sql /usr/share/zoneinfo 2>/dev/null | client mysql
  fi

  local pw host stmt= extra
  pw=$(sql_string "$MARIADB_ROOT_PASSWORD")
  host=$(sql_string "$MARIADB_ROOT_HOST")
  # mariadb-install-db also made root@127.0.0.1, root@::1 and root@<hostname>: only root@localhost
  # and root@$MARIADB_ROOT_HOST are kept.
  for extra in $(client -N -e "SELECT CONCAT(QUOTE(User), '@', QUOTE(Host)) FROM mysql.global_priv
                               WHERE User = 'root' AND Host <> 'localhost' OR User = ''"); do
    stmt+="DROP USER $extra;"$'\n'
  done
  stmt+="SET PASSWORD FOR 'root'@'localhost' = PASSWORD($pw);"$'\n'
  if [ "$MARIADB_ROOT_HOST" != localhost ]; then
    stmt+="CREATE USER 'root'@$host IDENTIFIED BY $pw;"$'\n'
    stmt+="GRANT ALL ON *.* TO 'root'@$host WITH GRANT OPTION;"$'\n'
    stmt+="GRANT PROXY ON ''@'%' TO 'root'@$host WITH GRANT OPTION;"$'\n'
  fi
  if [ -n "$MARIADB_DATABASE" ]; then
    stmt+="CREATE DATABASE IF NOT EXISTS $(sql_name "$MARIADB_DATABASE");"$'\n'
  fi
  if [ -n "$MARIADB_USER" ]; then
    stmt+="CREATE USER $(sql_string "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_string "$MARIADB_PASSWORD");"$'\n'
    if [ -n "$MARIADB_DATABASE" ]; then
      stmt+="GRANT ALL ON $(sql_name "$MARIADB_DATABASE").* TO $(sql_string "$MARIADB_USER")@'%';"$'\n'
    fi
  fi
  client <<<"SET @@SESSION.SQL_LOG_BIN = 0;"$'\n'"$stmt"
  [ -n "$MARIADB_DATABASE" ] && say "created database $MARIADB_DATABASE"
  [ -n "$MARIADB_USER" ] && say "created user $MARIADB_USER"

  # From here on root has its password; MYSQL_PWD hands it to every client the scripts start.
  export MYSQL_PWD=$MARIADB_ROOT_PASSWORD
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    [ -e "$f" ] && run_init_file "$f"
  done
  unset MYSQL_PWD
  kill -TERM "$pid"
  wait "$pid" || die "the set-up server did not stop cleanly"
  say "initialization done; starting the server"
}

# `docker run image --option` means mariadbd with that option.
if [ "${1:-}" ] && [ "${1:0:1}" = - ]; then set -- mariadbd "$@"; fi

if { [ "${1:-}" = mariadbd ] || [ "${1:-}" = mysqld ]; } \
   && ! printf '%s\n' "$@" | grep -qE '^(-\?|--help|--print-defaults|-V|--version)$'; then
  datadir=$(server_setting datadir "$@")
  datadir=${datadir%/}
  [ -n "$datadir" ] || die "could not read the server's datadir setting"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$datadir" /run/mysqld
    chown mysql:mysql /run/mysqld
    # Files left by another user (e.g. a restore run as root) become mysql's too.
    find "$datadir" \! -user mysql -exec chown mysql:mysql {} +
    HOME=/var/lib/mysql exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
  fi
  if [ -d "$datadir/mysql" ]; then
    say "database directory $datadir already initialized: no set-up"
  else
    first_start "$datadir" "$@"
  fi
fi

exec "$@"
