#!/usr/bin/env bash
# deploy/local/redis.sh start|stop|restart NAME PORT
# A Redis on loopback with AOF persistence (fsync every second), state in
# $CARAVAN_LOCAL_DIR/NAME/redis.
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
dir="$CARAVAN_LOCAL_DIR/$name/redis"
pidfile="$dir/redis.pid"

# Up means answering PONG: while it replays its append-only file, Redis answers
# LOADING (and redis-cli still exits 0), and every command fails.
up() { [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; }

start() {
  mkdir -p "$dir"
  if up; then return 0; fi
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
    --pidfile "$pidfile" --logfile "$dir/redis.log" --save "" \
    --appendonly yes --appendfsync everysec
  for _ in $(seq 600); do
    up && { say "redis up on 127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  say "redis did not start; see $dir/redis.log"; exit 1
}

stop() {
  [ -f "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  redis-cli -p "$port" shutdown >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
  # Wait for the process, not the port: a large append-only file takes time to flush.
  for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  say "redis on $port did not stop; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) say "usage: $0 start|stop|restart NAME PORT"; exit 2 ;;
esac
