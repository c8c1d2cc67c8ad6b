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
