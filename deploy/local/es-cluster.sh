#!/usr/bin/env bash
# deploy/local/es-cluster.sh start|stop NAME PORT [NODES]
# deploy/local/es-cluster.sh start-node|stop-node|kill-node NAME PORT NODE
# A real Elasticsearch cluster of NODES (default 3) master-eligible data nodes of
# the same distribution as elasticsearch.sh, on loopback, security off (local use
# only): node i (1..NODES) serves HTTP on PORT+i-1 and transport on PORT+100+i-1.
# State in $CARAVAN_LOCAL_DIR/NAME/es-N. The cluster tests use it to lose a node.
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
nodes="${4:-3}"

node_dir() { echo "$CARAVAN_LOCAL_DIR/$name/es-$1"; }
http_port() { echo $((port + $1 - 1)); }
answers() { curl -fsS "http://127.0.0.1:$(http_port "$1")/_cluster/health?timeout=1s" >/dev/null 2>&1; }

as_es_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$CARAVAN_ES_USER" -- "$@"; else "$@"; fi
}


# Every node of a cluster of $1 nodes is listed as a seed and, for the first
# formation only, as an initial master (ignored once the cluster has formed).
configure() {
  local node="$1" count="$2" dir i seeds="" masters=""
  dir="$(node_dir "$node")"
  for i in $(seq "$count"); do
    seeds+="${seeds:+, }\"127.0.0.1:$(($(http_port "$i") + 100))\""
    masters+="${masters:+, }\"$name-$i\""
  done
  mkdir -p "$dir/config" "$dir/data" "$dir/logs" "$dir/config/jvm.options.d"
  cp "$ES_HOME/config/jvm.options" "$ES_HOME/config/log4j2.properties" "$dir/config/"
  cat > "$dir/config/elasticsearch.yml" <<YML
cluster.name: caravan-$name
node.name: $name-$node
network.host: 127.0.0.1
http.port: $(http_port "$node")
transport.port: $(($(http_port "$node") + 100))
discovery.seed_hosts: [$seeds]
cluster.initial_master_nodes: [$masters]
path.data: $dir/data
path.logs: $dir/logs
xpack.security.enabled: false
cluster.routing.allocation.disk.threshold_enabled: false
${CARAVAN_ES_SETTINGS:-}
YML
  if [ "$(id -u)" -eq 0 ]; then chown -R "$CARAVAN_ES_USER" "$dir"; fi
}

launch() {
  local node="$1" dir
  dir="$(node_dir "$node")"
  if answers "$node" || [ -n "$(es_pid "$dir" "$(http_port "$node")")" ]; then return 0; fi
  as_es_user env ES_PATH_CONF="$dir/config" ES_JAVA_HOME="$CARAVAN_ES_JAVA_HOME" \
    ES_JAVA_OPTS="-Xms$CARAVAN_ES_HEAP -Xmx$CARAVAN_ES_HEAP" \
    "$ES_HOME/bin/elasticsearch" -d -p "$dir/es.pid" >/dev/null
}

# Until the first node sees $1 nodes in the cluster.
wait_nodes() {
  local want="$1" url i
  for _ in $(seq 240); do
    for i in $(seq "$nodes"); do
      url="http://127.0.0.1:$(http_port "$i")/_cluster/health?wait_for_nodes=$want&timeout=1s"
      if curl -fsS "$url" 2>/dev/null | grep -q '"timed_out":false'; then
        say "elasticsearch cluster $name: $want nodes from http://127.0.0.1:$port"
        return 0
      fi
    done
    sleep 1
  done
  say "elasticsearch cluster $name did not form; see $CARAVAN_LOCAL_DIR/$name/es-*/logs"
  exit 1
}

stop_node() {
  local node="$1" signal="${2:-TERM}" pidfile pid
  pidfile="$(node_dir "$node")/es.pid"
  pid="$(es_pid "$(node_dir "$node")" "$(http_port "$node")")"
  [ -n "$pid" ] || return 0
  kill "-$signal" "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "$action" in
  start)
    for i in $(seq "$nodes"); do configure "$i" "$nodes"; launch "$i"; done
    wait_nodes "$nodes" ;;
  stop) for i in $(seq "$nodes"); do stop_node "$i"; done ;;
  stop-node) stop_node "$nodes" ;;
  kill-node) stop_node "$nodes" KILL ;;
  start-node) launch "$nodes" ;;
  *) say "usage: $0 start|stop NAME PORT [NODES] | start-node|stop-node|kill-node NAME PORT NODE"
     exit 2 ;;
esac
