#!/usr/bin/env bash
# deploy/local/toxiproxy.sh start|stop|restart NAME PORT
# A toxiproxy server on loopback, its HTTP API on PORT, for the fault tests: it
# sits between a client and Redis or Elasticsearch and injects real TCP faults
# (latency, resets, black holes, slow links). State in $CARAVAN_LOCAL_DIR/NAME/toxiproxy.
# Only the fault tests need it, so the first start builds it from its Go module
# into .cache/bin (about 40 s) instead of every provisioning doing so.
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
dir="$CARAVAN_LOCAL_DIR/$name/toxiproxy"
pidfile="$dir/toxiproxy.pid"
TOXIPROXY_VERSION=v2.12.0
bin="$REPO_ROOT/.cache/bin/toxiproxy-server"

up() { curl -fsS "http://127.0.0.1:$port/version" >/dev/null 2>&1; }

build() {
  [ -x "$bin" ] && return 0
  if ! command -v go >/dev/null; then say "no Go toolchain: cannot build toxiproxy"; exit 1; fi
  say "building toxiproxy $TOXIPROXY_VERSION"
  # Built aside and renamed into place, so a concurrent start never runs half a binary.
  mkdir -p "$(dirname "$bin")"
  gobin="$(mktemp -d "$(dirname "$bin")/.build.XXXXXX")"
  GOBIN="$gobin" GOFLAGS=-buildvcs=false \
    go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
  mv "$gobin/server" "$bin"
  rm -rf "$gobin"
}

start() {
  if up; then return 0; fi
  build
  mkdir -p "$dir"
  # Its own session, so a Ctrl-C meant for the caller's terminal does not reach it.
  setsid "$bin" -host 127.0.0.1 -port "$port" </dev/null >"$dir/toxiproxy.log" 2>&1 &
  echo $! > "$pidfile"
  for _ in $(seq 100); do
    up && { say "toxiproxy up on 127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  say "toxiproxy did not start; see $dir/toxiproxy.log"; exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  kill "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) say "usage: $0 start|stop|restart NAME PORT"; exit 2 ;;
esac
