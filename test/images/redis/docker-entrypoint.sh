#!/usr/bin/env bash
# Entrypoint of the redis fixture image. Same contract as the official redis image:
#   - `docker run image --appendonly yes` or `docker run image /path/redis.conf` means redis-server
#     with those arguments;
#   - redis-server runs as user redis in /data (the working directory, so dump.rdb and
#     appendonlydir/ land there), taking over files of other owners found in it;
#   - without a config file, protected mode is off, so other containers can connect without a
#     password (the official image compiles that default in; here it is an argument put first, so
#     any --protected-mode given later still wins).
set -Eeuo pipefail

if [ "${1:-}" ] && { [ "${1:0:1}" = - ] || [[ "$1" == *.conf ]]; }; then
  set -- redis-server "$@"
fi

if [ "${1:-}" = redis-server ]; then
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis:redis {} +
    # Files redis writes (dump.rdb, the append-only files) are readable by their owner only.
    [ "$(umask)" = 0022 ] && umask 0077
    HOME=/data exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  case "${2:-}" in
    *.conf|-|-v|--version|-h|--help|--test-memory|--check-system) ;;  # not a server run or has a config file
    *) shift; set -- redis-server --protected-mode no "$@" ;;
  esac
fi

exec "$@"
