#!/usr/bin/env bash
# deploy/local/redis-cluster.sh start|stop NAME PORT
# deploy/local/redis-cluster.sh kill-node|start-node NAME PORT NODE
# deploy/local/redis-cluster.sh announce NAME PORT OFFSET
# A Redis Cluster of Debian's redis-server on loopback: six nodes on PORT..PORT+5
# (node i on PORT+i-1), three primaries with one replica each, AOF fsync every
# second as in redis.sh. State in $CARAVAN_LOCAL_DIR/NAME/redis-cluster/N.
# `announce` makes node i tell clients (and replicas) to reach it on its port + OFFSET,
# where a TCP proxy stands (the chaos run's toxiproxy), its cluster bus staying direct;
# OFFSET 0 tells its own port again. A node started again keeps what it announced.
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
nodes=6
base="$CARAVAN_LOCAL_DIR/$name/redis-cluster"

node_port() { echo $((port + $1 - 1)); }
# Bounded: a node paused (SIGSTOP, the chaos run's) never answers.
cli() { local node="$1"; shift; timeout 5 redis-cli -p "$(node_port "$node")" "$@"; }
up() { [ "$(cli "$1" ping 2>/dev/null)" = "PONG" ]; }

launch() {
  local node="$1" dir
  dir="$base/$node"
  mkdir -p "$dir"
  up "$node" && return 0
  local announced=()
  if [ -f "$dir/announce-port" ]; then
    announced=(--cluster-announce-port "$(cat "$dir/announce-port")"
               --cluster-announce-bus-port $(($(node_port "$node") + 10000)))
  fi
  # cluster-node-timeout 2 s: a lost primary is failed over in a few seconds
  # (the default, 15 s, is meant for flaky networks, not loopback).
  redis-server --bind 127.0.0.1 --port "$(node_port "$node")" --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --save "" \
    --appendonly yes --appendfsync everysec \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
    --repl-diskless-sync-delay 0 "${announced[@]}"
  for _ in $(seq 300); do up "$node" && return 0; sleep 0.1; done
  say "redis cluster node $node did not start; see $dir/redis.log"; exit 1
}

# Node $1 is not a primary, or its replica has finished its first sync: only such a
# replica takes over when the primary dies (one that never synced refuses to).
synced() {
  local info
  info="$(cli "$1" info replication 2>/dev/null)" || return 0
  grep -q "role:master" <<<"$info" || return 0
  grep -q "state=online" <<<"$info"
}

# Formed: every slot served, and every primary with its replica attached and synced.
formed() {
  local i
  cli 1 cluster info 2>/dev/null | grep -q "cluster_state:ok" &&
    [ "$(cli 1 cluster nodes | grep -c slave)" -eq $((nodes / 2)) ] || return 1
  for i in $(seq "$nodes"); do synced "$i" || return 1; done
}

start() {
  local i addresses=()
  # None up: what is here is a run's that ended without its stop (killed), which would
  # have removed it; its nodes.conf may name a proxy's ports (announce) that nothing
  # serves now, and the cluster never formed again. Started as that stop would leave it.
  for i in $(seq "$nodes"); do up "$i" && break; [ "$i" -eq "$nodes" ] && rm -rf "$base"; done
  for i in $(seq "$nodes"); do launch "$i"; addresses+=("127.0.0.1:$(node_port "$i")"); done
  # Created once: restarted nodes find each other again through nodes.conf.
  if redis-cli -p "$port" cluster info | grep -q "cluster_known_nodes:1\b"; then
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  fi
  for _ in $(seq 300); do
    formed && { say "redis cluster up on 127.0.0.1:$port-$(node_port "$nodes")"; return 0; }
    sleep 0.1
  done
  say "redis cluster did not form; see $base/*/redis.log"; exit 1
}

stop_node() {
  local node="$1" signal="${2:-TERM}" pidfile pid
  pidfile="$base/$node/redis.pid"
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "-$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
}

# Every node up seen by every other at the port it announces (one down takes its port
# from the file when it starts again).
announced() {
  local i j want live=()
  for i in $(seq "$nodes"); do up "$i" && live+=("$i"); done
  for i in "${live[@]}"; do
    for j in "${live[@]}"; do
      want=$(($(node_port "$j") + offset))
      cli "$i" cluster nodes 2>/dev/null |
        grep -q " 127.0.0.1:$want@$(($(node_port "$j") + 10000)) " || return 1
    done
  done
}

announce() {
  local i dir
  offset="$1"
  for i in $(seq "$nodes"); do
    dir="$base/$i"
    # The file is what a node started again announces; a node down now takes it then.
    if [ "$offset" -eq 0 ]; then
      rm -f "$dir/announce-port"
      up "$i" && cli "$i" config set cluster-announce-port 0 >/dev/null
    else
      echo $(($(node_port "$i") + offset)) >"$dir/announce-port"
      up "$i" && cli "$i" config set cluster-announce-bus-port $(($(node_port "$i") + 10000)) \
        >/dev/null && cli "$i" config set cluster-announce-port $(($(node_port "$i") + offset)) \
        >/dev/null
    fi
  done
  # By the clock: a paused node costs each pass its 5 s timeout.
  local until=$((SECONDS + 30))
  while [ "$SECONDS" -lt "$until" ]; do announced && return 0; sleep 0.1; done
  say "redis cluster nodes did not all learn the announced ports; see $base/*/redis.log"; exit 1
}

case "$action" in
  start) start ;;
  # The cluster's state is thrown away on stop: the tests want a fresh one each run.
  stop) for i in $(seq "$nodes"); do stop_node "$i"; done; rm -rf "$base" ;;
  kill-node) stop_node "$4" KILL ;;
  # Back once the cluster is whole again, every replica synced, so that the next kill
  # of a primary can be failed over; a cluster still short of a node (another one
  # down) is waited for 30 s at most.
  start-node)
    launch "$4"
    for _ in $(seq 300); do formed && break; sleep 0.1; done
    ;;
  announce) announce "$4" ;;
  *) say "usage: $0 start|stop NAME PORT | kill-node|start-node NAME PORT NODE | announce NAME PORT OFFSET"; exit 2 ;;
esac
