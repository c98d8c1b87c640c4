#!/bin/bash
# Starts one OpenSearch node, taking settings the way the official image does: any environment
# variable whose name contains a dot is a setting (discovery.type=single-node, path.repo=/snapshots),
# as are -Ekey=value arguments; OPENSEARCH_JAVA_OPTS is added to the JVM flags. Any other command
# (bash, curl, ...) is run as given.
set -euo pipefail
home=${OPENSEARCH_HOME:-/usr/share/opensearch}

if [ "${1:-opensearch}" = opensearch ]; then
  [ $# -gt 0 ] && shift
elif [[ $1 != -* ]]; then
  exec "$@"
fi

# Value of a setting from the -E arguments or the environment (last one wins), else $2.
setting() {
  local key=$1 value arg
  value=$(env | sed -n "s|^${key//./\\.}=||p" | tail -n 1)
  for arg in "${ARGS[@]}"; do
    case $arg in -E"$key"=*) value=${arg#-E"$key"=} ;; esac
  done
  printf '%s\n' "${value:-$2}"
}
ARGS=("$@")

# Started as root (the default): make the data, logs and snapshot directories, which are often
# fresh volumes owned by root, belong to the opensearch user (1000), then run as that user.
run_as=()
if [ "$(id -u)" = 0 ]; then
  dirs=("$(setting path.data "$home/data")" "$(setting path.logs "$home/logs")")
  IFS=',' read -r -a repos <<< "$(setting path.repo "" | tr -d '[] ')"
  for dir in "${dirs[@]}" "${repos[@]}"; do
    [ -n "$dir" ] || continue
    mkdir -p "$dir"
    find "$dir" ! -user 1000 -exec chown 1000:1000 {} +
  done
  run_as=(setpriv --reuid=1000 --regid=1000 --init-groups)
fi

# The flags of the distribution's jvm.options that matter here; OPENSEARCH_JAVA_OPTS comes last
# so its -Xms/-Xmx win over the 1g default.
jvm=(-Xms1g -Xmx1g -XX:+UseG1GC -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true
     -Dfile.encoding=UTF-8 -Djna.nosys=true -Dio.netty.recycler.maxCapacityPerThread=0
     -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true -Dlog4j2.formatMsgNoLookups=true
     -Djava.io.tmpdir=/tmp -Dopensearch.path.home="$home")
# shellcheck disable=SC2206
[ -n "${OPENSEARCH_JAVA_OPTS:-}" ] && jvm+=($OPENSEARCH_JAVA_OPTS)

exec "${run_as[@]}" java "${jvm[@]}" -cp "$home/lib/*" ComposureOpenSearch "$@"
