#!/usr/bin/env bash
# deploy/local/bench.sh MODULE [REDIS_NAME REDIS_PORT] -- [ARGS...]
# Runs `python -m bench.MODULE ARGS`. Elasticsearch: ELASTICSEARCH_URL, else the test
# node on 9291, started (and left running) here. Redis, for the benches that need one
# (REDIS_NAME and REDIS_PORT given): REDIS_URL, else that instance, started here.
source "$(dirname "$0")/common.sh"
module="$1"; shift
if [ "${1:-}" != "--" ] && [ $# -ge 2 ]; then
  redis_name="$1" redis_port="$2"; shift 2
  if [ -z "${REDIS_URL:-}" ]; then
    "$REPO_ROOT/deploy/local/redis.sh" start "$redis_name" "$redis_port"
    export REDIS_URL="redis://127.0.0.1:$redis_port/0"
  fi
fi
[ "${1:-}" = "--" ] && shift
if [ -z "${ELASTICSEARCH_URL:-}" ]; then
  "$REPO_ROOT/deploy/local/elasticsearch.sh" start test 9291
  export ELASTICSEARCH_URL="http://127.0.0.1:9291"
fi
cd "$REPO_ROOT"
exec "$VENV_DIR"/bin/python -m "bench.$module" "$@"
