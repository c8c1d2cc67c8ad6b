#!/usr/bin/env bash
# Installs what the local run and the tests need, skipping whatever is already there:
# the Python environment, Debian's redis-server, and the Elasticsearch distribution
# from Maven Central (fetched by its coordinates with mvn; no bundled JDK).
source "$(dirname "$0")/common.sh"

if [ ! -x "$REPO_ROOT/.venv/bin/caravan" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$REPO_ROOT/.venv/.installed" ]; then
  say "creating the Python environment in .venv"
  python3 -m venv "$REPO_ROOT/.venv"
  "$REPO_ROOT/.venv/bin/pip" install --quiet --upgrade pip
  "$REPO_ROOT/.venv/bin/pip" install --quiet -e "$REPO_ROOT[dev]"
  touch "$REPO_ROOT/.venv/.installed"
fi

if ! command -v redis-server >/dev/null; then
  say "installing redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x "$CARAVAN_ES_JAVA_HOME/bin/java" ]; then
  say "no JDK at $CARAVAN_ES_JAVA_HOME (set CARAVAN_ES_JAVA_HOME)"; exit 1
fi

if [ ! -x "$ES_HOME/bin/elasticsearch" ]; then
  artifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$CARAVAN_ES_VERSION:zip"
  say "fetching $artifact"
  mkdir -p "$CARAVAN_LOCAL_DIR/dist"
  mvn -q -B dependency:copy -Dartifact="$artifact" -DoutputDirectory="$CARAVAN_LOCAL_DIR/dist" \
    -Dmdep.overWriteIfNewer=true
  unzip -q -o "$CARAVAN_LOCAL_DIR/dist/elasticsearch-$CARAVAN_ES_VERSION.zip" -d "$CARAVAN_LOCAL_DIR/dist"
  rm -f "$CARAVAN_LOCAL_DIR/dist/elasticsearch-$CARAVAN_ES_VERSION.zip"
fi

if [ "$(id -u)" -eq 0 ] && ! id "$CARAVAN_ES_USER" >/dev/null 2>&1; then
  say "creating system user $CARAVAN_ES_USER (Elasticsearch refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$CARAVAN_ES_USER"
fi
