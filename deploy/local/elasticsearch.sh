#!/usr/bin/env bash
# deploy/local/elasticsearch.sh start|stop|restart NAME PORT
# A single-node Elasticsearch on loopback, security off (local use only), run as
# an unprivileged user; configuration, data and logs in $CARAVAN_LOCAL_DIR/NAME/es.
# CARAVAN_ES_SETTINGS: extra elasticsearch.yml lines (the fault tests use it).
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
dir="$CARAVAN_LOCAL_DIR/$name/es"
pidfile="$dir/es.pid"
url="http://127.0.0.1:$port"

healthy() {
  curl -fsS "$url/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

as_es_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$CARAVAN_ES_USER" -- "$@"; else "$@"; fi
}

start() {
  if healthy; then return 0; fi
  mkdir -p "$dir/config" "$dir/data" "$dir/logs"
  cp "$ES_HOME/config/jvm.options" "$ES_HOME/config/log4j2.properties" "$dir/config/"
  mkdir -p "$dir/config/jvm.options.d"
  cat > "$dir/config/elasticsearch.yml" <<YML
cluster.name: caravan-$name
node.name: $name
discovery.type: single-node
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
path.data: $dir/data
path.logs: $dir/logs
xpack.security.enabled: false
# Local disks are often fuller than a server's: do not turn indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
${CARAVAN_ES_SETTINGS:-}
YML
  if [ "$(id -u)" -eq 0 ]; then chown -R "$CARAVAN_ES_USER" "$dir"; fi
  as_es_user env ES_PATH_CONF="$dir/config" ES_JAVA_HOME="$CARAVAN_ES_JAVA_HOME" \
    ES_JAVA_OPTS="-Xms$CARAVAN_ES_HEAP -Xmx$CARAVAN_ES_HEAP" \
    "$ES_HOME/bin/elasticsearch" -d -p "$pidfile" >/dev/null
  for _ in $(seq 180); do
    healthy && { say "elasticsearch up on $url"; return 0; }
    sleep 1
  done
  say "elasticsearch did not become ready; see $dir/logs"; exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) say "usage: $0 start|stop|restart NAME PORT"; exit 2 ;;
esac
