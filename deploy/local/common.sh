# Shared settings of the local-infrastructure scripts; sourced, not run.
# Where things live: the distribution cache and instance state sit outside the
# checkout, because the unprivileged Elasticsearch user must be able to reach
# them wherever the repository was cloned.
set -euo pipefail

CARAVAN_ES_VERSION="${CARAVAN_ES_VERSION:-9.2.8}"
CARAVAN_ES_JAVA_HOME="${CARAVAN_ES_JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
CARAVAN_ES_HEAP="${CARAVAN_ES_HEAP:-512m}"
CARAVAN_ES_USER="${CARAVAN_ES_USER:-caravan-es}"
if [ "$(id -u)" -eq 0 ]; then
  CARAVAN_LOCAL_DIR="${CARAVAN_LOCAL_DIR:-/var/lib/caravan}"
else
  CARAVAN_LOCAL_DIR="${CARAVAN_LOCAL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/caravan}"
fi
ES_HOME="$CARAVAN_LOCAL_DIR/dist/elasticsearch-$CARAVAN_ES_VERSION"
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf '[caravan] %s\n' "$*" >&2; }
# The Python environment: the locked one, unless CARAVAN_VENV names another.
VENV_DIR="${CARAVAN_VENV:-$REPO_ROOT/.venv}"

# The pid of the Elasticsearch node configured in $1 (its directory) and serving HTTP on
# port $2, if it runs: its pid file's, else the process holding the port with that
# configuration. A second start while a node runs but does not answer yet fails on the
# node lock and deletes the pid file as it goes: the node would then outlive every stop.
es_pid() {
  local dir="$1" port="$2" pid=""
  [ -f "$dir/es.pid" ] && pid="$(cat "$dir/es.pid")"
  if [ -z "$pid" ] || ! es_configured_by "$dir" "$pid"; then
    pid="$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
  fi
  if [ -n "$pid" ] && es_configured_by "$dir" "$pid"; then echo "$pid"; fi
}

es_configured_by() {
  grep -qzxF "ES_PATH_CONF=$1/config" "/proc/$2/environ" 2>/dev/null
}
