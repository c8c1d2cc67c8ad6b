#!/usr/bin/env bash
# deploy/local/redis.sh start|stop|restart NAME PORT
# A Redis on loopback with AOF persistence (fsync every second), state in
# $CARAVAN_LOCAL_DIR/NAME/redis.
source "$(dirname "$0")/common.sh"
action="$1" name="$2" port="$3"
dir="$CARAVAN_LOCAL_DIR/$name/redis"
pidfile="$dir/redis.pid"

start() {
  mkdir -p "$dir"
  if redis-cli -p "$port" ping >/dev/null 2>&1; then return 0; fi
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" --daemonize yes \
    --pidfile "$pidfile" --logfile "$dir/redis.log" --save "" \
    --appendonly yes --appendfsync everysec
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && { say "redis up on 127.0.0.1:$port"; return 0; }
    sleep 0.1
  done
  say "redis did not start; see $dir/redis.log"; exit 1
}

stop() {
  redis-cli -p "$port" shutdown >/dev/null 2>&1 || true
  for _ in $(seq 50); do
    redis-cli -p "$port" ping >/dev/null 2>&1 || return 0
    sleep 0.1
  done
}

case "$action" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  *) say "usage: $0 start|stop|restart NAME PORT"; exit 2 ;;
esac
