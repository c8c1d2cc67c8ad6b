#!/usr/bin/env bash
# Runs the test suite against a real Redis and a real Elasticsearch started for it
# (instance "test": Redis on 6391, Elasticsearch on 9291), unless REDIS_URL and
# ELASTICSEARCH_URL already name external ones. Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

started=()
cleanup() {
  for server in "${started[@]}"; do
    case "$server" in
      redis.sh) deploy/local/redis.sh stop test 6391 ;;
      elasticsearch.sh) deploy/local/elasticsearch.sh stop test 9291 ;;
    esac
  done
}
if [ -z "${REDIS_URL:-}" ]; then
  deploy/local/redis.sh start test 6391
  export REDIS_URL="redis://127.0.0.1:6391/0"
  started+=("redis.sh")
fi
if [ -z "${ELASTICSEARCH_URL:-}" ]; then
  deploy/local/elasticsearch.sh start test 9291
  export ELASTICSEARCH_URL="http://127.0.0.1:9291"
  started+=("elasticsearch.sh")
fi
if [ "${CARAVAN_KEEP_TEST_SERVERS:-}" != "1" ]; then trap cleanup EXIT; fi

# The container tests' podman, stand-in images and the project's image (as root: apt).
if [ "$(id -u)" -eq 0 ]; then
  deploy/local/containers.sh
  export CONTAINERS_CONF="$REPO_ROOT/deploy/containers/containers.conf"
fi

say "format, lint, types and import boundaries"
"$VENV_DIR"/bin/ruff format --check .
"$VENV_DIR"/bin/ruff check .
"$VENV_DIR"/bin/mypy
"$VENV_DIR"/bin/lint-imports
deploy/local/lint-rust.sh
say "tests"
# The whole suite in CARAVAN_TEST_WORKERS processes (2): it waits on servers far more
# than it computes. Folders that share fixed-port servers stay in one worker
# (tests/conftest.py). Given arguments, pytest runs them as asked.
if [ "$#" -eq 0 ]; then
  set -- -n "${CARAVAN_TEST_WORKERS:-2}" --dist loadgroup
fi
"$VENV_DIR"/bin/pytest "$@"
