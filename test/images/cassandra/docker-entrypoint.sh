#!/bin/bash
# Entrypoint with the environment interface of the official cassandra image:
#   CASSANDRA_CLUSTER_NAME, CASSANDRA_NUM_TOKENS, CASSANDRA_SEEDS (default: this node),
#   CASSANDRA_LISTEN_ADDRESS (default: the container's own IP, `hostname -i`),
#   CASSANDRA_BROADCAST_ADDRESS (default: the listen address), CASSANDRA_RPC_ADDRESS (default
#   0.0.0.0), CASSANDRA_BROADCAST_RPC_ADDRESS (default: the broadcast address),
#   CASSANDRA_ENDPOINT_SNITCH, CASSANDRA_DC, CASSANDRA_RACK (either switches the default snitch to
#   GossipingPropertyFileSnitch), MAX_HEAP_SIZE, HEAP_NEWSIZE, JVM_EXTRA_OPTS.
# Beyond the official image: CASSANDRA_AUTO_BOOTSTRAP (true|false, default true).
# Started as root, it fixes ownership of the data, log and config directories and drops to the
# cassandra user (uid 999).
set -euo pipefail

# `docker run image -Dfoo=bar` means `cassandra -f -Dfoo=bar`.
if [ "${1:0:1}" = '-' ]; then
  set -- cassandra -f "$@"
fi

if [ "$1" != cassandra ]; then
  exec "$@"
fi

conf=${CASSANDRA_CONF:-/etc/cassandra}

if [ "$(id -u)" = 0 ]; then
  find /var/lib/cassandra /var/log/cassandra "$conf" \! -user cassandra -exec chown cassandra:cassandra '{}' +
  exec setpriv --reuid=999 --regid=999 --init-groups "$0" "$@"
fi

own_ip() {
  local ips
  ips=$(hostname -i 2>/dev/null || true)
  set -- $ips
  for ip in "$@"; do
    case $ip in 127.*|::1|*:*) ;; *) echo "$ip"; return ;; esac
  done
  echo "${1:-127.0.0.1}"
}

# Sets a top-level key of cassandra.yaml (replacing the line, commented or not, or appending it).
set_yaml() {
  local key=$1 value=$2 file="$conf/cassandra.yaml"
  awk -v key="$key" -v value="$value" '
    BEGIN { done = 0 }
    $0 ~ "^#? ?" key ":" && !done { print key ": " value; done = 1; next }
    { print }
    END { if (!done) print key ": " value }
  ' "$file" > "$file.new"
  cat "$file.new" > "$file"
  rm -f "$file.new"
}

: "${CASSANDRA_RPC_ADDRESS:=0.0.0.0}"
: "${CASSANDRA_LISTEN_ADDRESS:=auto}"
[ "$CASSANDRA_LISTEN_ADDRESS" = auto ] && CASSANDRA_LISTEN_ADDRESS=$(own_ip)
: "${CASSANDRA_BROADCAST_ADDRESS:=$CASSANDRA_LISTEN_ADDRESS}"
[ "$CASSANDRA_BROADCAST_ADDRESS" = auto ] && CASSANDRA_BROADCAST_ADDRESS=$(own_ip)
: "${CASSANDRA_BROADCAST_RPC_ADDRESS:=$CASSANDRA_BROADCAST_ADDRESS}"
: "${CASSANDRA_SEEDS:=$CASSANDRA_BROADCAST_ADDRESS}"
: "${CASSANDRA_CLUSTER_NAME:=Test Cluster}"
: "${CASSANDRA_NUM_TOKENS:=16}"
: "${CASSANDRA_AUTO_BOOTSTRAP:=true}"
if [ -z "${CASSANDRA_ENDPOINT_SNITCH:-}" ]; then
  if [ -n "${CASSANDRA_DC:-}${CASSANDRA_RACK:-}" ]; then
    CASSANDRA_ENDPOINT_SNITCH=GossipingPropertyFileSnitch
  else
    CASSANDRA_ENDPOINT_SNITCH=SimpleSnitch
  fi
fi

set_yaml cluster_name "'${CASSANDRA_CLUSTER_NAME//\'/\'\'}'"
set_yaml num_tokens "$CASSANDRA_NUM_TOKENS"
set_yaml listen_address "$CASSANDRA_LISTEN_ADDRESS"
set_yaml broadcast_address "$CASSANDRA_BROADCAST_ADDRESS"
set_yaml rpc_address "$CASSANDRA_RPC_ADDRESS"
set_yaml broadcast_rpc_address "$CASSANDRA_BROADCAST_RPC_ADDRESS"
set_yaml endpoint_snitch "$CASSANDRA_ENDPOINT_SNITCH"
set_yaml auto_bootstrap "$CASSANDRA_AUTO_BOOTSTRAP"
sed -i -E "s|^( *- seeds:).*|\\1 \"${CASSANDRA_SEEDS//|/}\"|" "$conf/cassandra.yaml"

rackdc="$conf/cassandra-rackdc.properties"
if [ -n "${CASSANDRA_DC:-}" ]; then sed -i -E "s|^dc=.*|dc=$CASSANDRA_DC|" "$rackdc"; fi
if [ -n "${CASSANDRA_RACK:-}" ]; then sed -i -E "s|^rack=.*|rack=$CASSANDRA_RACK|" "$rackdc"; fi

exec "$@"
