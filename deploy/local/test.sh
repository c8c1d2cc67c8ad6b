#!/usr/bin/env bash
# Runs the test suite against a real Redis and a real Elasticsearch started for it
# (instance "test": Redis on 6391, Elasticsearch on 9291), unless REDIS_URL and
# ELASTICSEARCH_URL already name external ones. Extra arguments go to pytest.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

started=()
cleanup() {
  # Interrupted: the other pytest stops as on Ctrl-C, its fixtures stopping its servers.
  if [ -n "${own_pid:-}" ]; then
    kill -INT "$own_pid" 2>/dev/null && wait "$own_pid" || true
    cat "$own_log"
    rm -f "$own_log"
  fi
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
if [ "$#" -gt 0 ]; then
  "$VENV_DIR"/bin/pytest "$@"
  exit
fi
# The whole suite as two pytest processes at once: it waits on servers far more than
# it computes. The folders whose tests start servers on fixed ports of their own run
# in one, one after another; everything else in the other, printed as it goes. (Not
# pytest-xdist: its groups do not hold on pytest 9, which ignores the ids it rewrites.)
own_servers=(tests/cluster tests/faults tests/security)
own_log="$(mktemp)"
# Without the cache plugin: the two would write .pytest_cache at once. SIGINT back to
# its default, which bash ignores in a background job.
(trap - INT; exec "$VENV_DIR"/bin/pytest -p no:cacheprovider "${own_servers[@]}") \
  >"$own_log" 2>&1 &
own_pid=$!
status=0
"$VENV_DIR"/bin/pytest "${own_servers[@]/#/--ignore=}" || status=$?
wait "$own_pid" || status=$?
own_pid=
say "tests with servers of their own (${own_servers[*]})"
cat "$own_log"
rm -f "$own_log"
exit "$status"
