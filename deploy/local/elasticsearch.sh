#!/usr/bin/env bash
# deploy/local/elasticsearch.sh start|stop|restart NAME PORT [secure]
# A single-node Elasticsearch on loopback, security off (local use only), run as
# an unprivileged user; configuration, data and logs in $CARAVAN_LOCAL_DIR/NAME/es.
# CARAVAN_ES_SETTINGS: extra elasticsearch.yml lines (the fault tests use it).
# `secure`: security on, as in production. HTTPS (and transport TLS) with a node
# certificate from a CA made on first start by the distribution's own
# elasticsearch-certutil (CA: $dir/config/certs/ca/ca.crt), and one file-realm
# superuser, `caravan-bootstrap` (password in $dir/bootstrap-password), meant only
# for creating roles and API keys (`caravan keys create`).
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3" mode="${4:-}"
dir="$CARAVAN_LOCAL_DIR/$name/es"
pidfile="$dir/es.pid"
certs="$dir/config/certs"
if [ "$mode" = secure ]; then url="https://127.0.0.1:$port"; else url="http://127.0.0.1:$port"; fi

healthy() {
  local auth=()
  if [ "$mode" = secure ]; then
    [ -f "$dir/bootstrap-password" ] || return 1
    auth=(--cacert "$certs/ca/ca.crt" -u "caravan-bootstrap:$(cat "$dir/bootstrap-password")")
  fi
  curl -fsS "${auth[@]}" "$url/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1
}

es_tool() {
  local tool="$1"; shift
  env ES_PATH_CONF="$dir/config" ES_JAVA_HOME="$CARAVAN_ES_JAVA_HOME" "$ES_HOME/bin/$tool" "$@"
}

# The CA, the node certificate (for 127.0.0.1 and localhost) and the bootstrap
# user, made once per instance and kept across restarts.
secure_setup() {
  if [ ! -f "$certs/node/node.crt" ]; then
    rm -rf "$certs" && mkdir -p "$certs"
    es_tool elasticsearch-certutil ca --pem --silent --days 3650 --out "$certs/ca.zip"
    unzip -q -o "$certs/ca.zip" -d "$certs"
    es_tool elasticsearch-certutil cert --pem --silent --days 3650 --name node \
      --ca-cert "$certs/ca/ca.crt" --ca-key "$certs/ca/ca.key" \
      --ip 127.0.0.1 --dns localhost --out "$certs/node.zip"
    unzip -q -o "$certs/node.zip" -d "$certs"
    rm -f "$certs/ca.zip" "$certs/node.zip"
    chmod 600 "$certs/ca/ca.key" "$certs/node/node.key"
  fi
  if [ ! -f "$dir/bootstrap-password" ]; then
    (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$dir/bootstrap-password")
    # The file realm's files must exist before its tool will write to them.
    touch "$dir/config/users" "$dir/config/users_roles"
    es_tool elasticsearch-users userdel caravan-bootstrap >/dev/null 2>&1 || true
    es_tool elasticsearch-users useradd caravan-bootstrap -r superuser \
      -p "$(cat "$dir/bootstrap-password")"
  fi
}

security_settings() {
  if [ "$mode" != secure ]; then echo "xpack.security.enabled: false"; return; fi
  cat <<YML
xpack.security.enabled: true
xpack.security.http.ssl.enabled: true
xpack.security.http.ssl.key: certs/node/node.key
xpack.security.http.ssl.certificate: certs/node/node.crt
xpack.security.http.ssl.certificate_authorities: certs/ca/ca.crt
xpack.security.transport.ssl.enabled: true
xpack.security.transport.ssl.verification_mode: certificate
xpack.security.transport.ssl.key: certs/node/node.key
xpack.security.transport.ssl.certificate: certs/node/node.crt
xpack.security.transport.ssl.certificate_authorities: certs/ca/ca.crt
YML
}

as_es_user() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u "$CARAVAN_ES_USER" -- "$@"; else "$@"; fi
}

start() {
  if healthy; then return 0; fi
  if [ -z "$(es_pid "$dir" "$port")" ]; then launch; fi
  for _ in $(seq 180); do
    healthy && { say "elasticsearch up on $url"; return 0; }
    sleep 1
  done
  say "elasticsearch did not become ready; see $dir/logs"; exit 1
}

launch() {
  mkdir -p "$dir/config" "$dir/data" "$dir/logs"
  cp "$ES_HOME/config/jvm.options" "$ES_HOME/config/log4j2.properties" "$dir/config/"
  mkdir -p "$dir/config/jvm.options.d"
  if [ "$mode" = secure ]; then secure_setup; fi
  cat > "$dir/config/elasticsearch.yml" <<YML
cluster.name: caravan-$name
node.name: $name
discovery.type: single-node
network.host: 127.0.0.1
http.port: $port
transport.port: $((port + 100))
path.data: $dir/data
path.logs: $dir/logs
$(security_settings)
# Local disks are often fuller than a server's: do not turn indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
${CARAVAN_ES_SETTINGS:-}
YML
  if [ "$(id -u)" -eq 0 ]; then chown -R "$CARAVAN_ES_USER" "$dir"; fi
  as_es_user env ES_PATH_CONF="$dir/config" ES_JAVA_HOME="$CARAVAN_ES_JAVA_HOME" \
    ES_JAVA_OPTS="-Xms$CARAVAN_ES_HEAP -Xmx$CARAVAN_ES_HEAP" \
    "$ES_HOME/bin/elasticsearch" -d -p "$pidfile" >/dev/null
}

stop() {
  pid="$(es_pid "$dir" "$port")"
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 60); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) say "usage: $0 start|stop|restart NAME PORT [secure]"; exit 2 ;;
esac
