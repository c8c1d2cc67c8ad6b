#!/usr/bin/env bash
# Installs what the local run and the tests need, skipping whatever is already there:
# the Python environment, Debian's redis-server, and the Elasticsearch distribution
# from Maven Central (fetched by its coordinates with mvn; no bundled JDK) with our
# analysis plugin (es-plugin.sh).
source "$(dirname "$0")/common.sh"

# The chunk table (shared/language/chunks) is Rust, built with Caravan: a cargo at
# least as new as its Cargo.toml's rust-version first. Debian 12 packages a current
# toolchain as cargo-web (its `cargo` is too old); later releases as cargo.
rust_version="$(sed -n 's/^rust-version = "\(.*\)"$/\1/p' "$REPO_ROOT/shared/language/chunks/Cargo.toml")"
cargo_current() {
  local found
  found="$(cargo --version 2>/dev/null | cut -d' ' -f2)" || return 1
  [ -n "$found" ] && [ "$(printf '%s\n%s\n' "$rust_version" "$found" | sort -V | head -n 1)" = "$rust_version" ]
}
if ! cargo_current; then
  say "installing Debian's cargo (the chunk table in shared/language/chunks is Rust; it needs $rust_version or later)"
  apt-get update -qq
  package=cargo
  if apt-cache show cargo-web >/dev/null 2>&1; then package=cargo-web; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
  if ! cargo_current; then
    say "cargo $(cargo --version 2>/dev/null | cut -d' ' -f2) is older than $rust_version: install a newer one (rustup)"
    exit 1
  fi
fi
# Whether the chunk table is built, from its sources as they are now (after a pull
# that changed them, it is built again).
chunks_built() {
  local built
  built="$(find "$REPO_ROOT/shared/language" -maxdepth 1 -name '_chunks.*.so' -print -quit)"
  [ -n "$built" ] && [ -z "$(find "$REPO_ROOT/shared/language/chunks" -name target -prune \
                                 -o -type f -newer "$built" -print -quit)" ]
}

# Exactly the locked versions (requirements-dev.lock, hashes checked; see README,
# "Dependencies"): a fresh clone installs what CI tested, never what is newest today.
# CARAVAN_UNLOCKED=1 builds $CARAVAN_VENV from the newest allowed versions instead
# (`make test-latest`).
if [ "${CARAVAN_UNLOCKED:-}" = "1" ]; then
  if [ ! -x "$VENV_DIR/bin/caravan" ] || [ "$REPO_ROOT/pyproject.toml" -nt "$VENV_DIR/.installed" ] \
      || ! chunks_built; then
    say "creating $VENV_DIR from the newest versions pyproject.toml allows (not the lock)"
    python3 -m venv "$VENV_DIR"
    "$VENV_DIR/bin/pip" install --quiet --upgrade pip
    "$VENV_DIR/bin/pip" install --quiet --upgrade --upgrade-strategy eager -e "$REPO_ROOT[dev]"
    touch "$VENV_DIR/.installed"
  fi
elif [ ! -x "$VENV_DIR/bin/caravan" ] || [ "$REPO_ROOT/requirements-dev.lock" -nt "$VENV_DIR/.installed" ] \
    || [ "$REPO_ROOT/pyproject.toml" -nt "$VENV_DIR/.installed" ] || ! chunks_built; then
  say "installing the locked Python environment in $VENV_DIR"
  python3 -m venv "$VENV_DIR"
  "$VENV_DIR/bin/pip" install --quiet --require-hashes --no-deps -r "$REPO_ROOT/requirements-dev.lock"
  # Caravan itself, built with the locked setuptools (no isolated, unpinned build env).
  "$VENV_DIR/bin/pip" install --quiet --no-deps --no-build-isolation -e "$REPO_ROOT"
  touch "$VENV_DIR/.installed"
fi

if ! command -v redis-server >/dev/null; then
  say "installing redis-server"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# The search page test drives Debian's chromium through Playwright (no browser download).
if [ ! -x /usr/bin/chromium ] && [ "$(id -u)" -eq 0 ]; then
  say "installing chromium (for the browser test of the search page)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
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
# The three analysis-common components that API keys and native roles need.
"$(dirname "$0")/es-plugin.sh"

if [ "$(id -u)" -eq 0 ] && ! id "$CARAVAN_ES_USER" >/dev/null 2>&1; then
  say "creating system user $CARAVAN_ES_USER (Elasticsearch refuses to run as root)"
  useradd --system --no-create-home --shell /usr/sbin/nologin "$CARAVAN_ES_USER"
fi

# Offline validators of the deployment files (tests/deploy), kept in the venv's bin:
# kustomize renders the Kubernetes overlays (built with Go; v5.8 needs Go 1.27), and
# promtool checks the Prometheus configuration and rules (taken out of Debian's
# prometheus package, so no Prometheus server is installed or started).
KUSTOMIZE_VERSION=v5.7.1
if [ ! -x "$REPO_ROOT/.venv/bin/kustomize" ]; then
  if ! command -v go >/dev/null; then say "no Go toolchain: cannot build kustomize"; exit 1; fi
  say "building kustomize $KUSTOMIZE_VERSION"
  GOBIN="$REPO_ROOT/.venv/bin" GOFLAGS=-buildvcs=false \
    go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION"
fi

if [ ! -x "$REPO_ROOT/.venv/bin/promtool" ]; then
  say "extracting promtool from Debian's prometheus package"
  deb_dir="$(mktemp -d)"
  chmod 755 "$deb_dir"  # apt's download sandbox user must be able to write there
  (cd "$deb_dir" && { apt-get download -qq prometheus 2>/dev/null \
                      || { apt-get update -qq && apt-get download -qq prometheus; }; } \
     && dpkg-deb -x prometheus_*.deb root)
  install -m 755 "$deb_dir/root/usr/bin/promtool" "$REPO_ROOT/.venv/bin/promtool"
  rm -rf "$deb_dir"
fi

# The example consumers (tests/e2e/test_example_consumers.py builds them into .cache/):
# the Node one's packages exactly as locked, the Go one's modules into the module cache.
if ! command -v npm >/dev/null && [ "$(id -u)" -eq 0 ]; then
  say "installing Debian's nodejs and npm (for the Node example consumer and axe-core)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node_example="$REPO_ROOT/examples/node"
if [ "$node_example/package-lock.json" -nt "$node_example/node_modules/.package-lock.json" ]; then
  say "installing the Node example consumer's packages (npm ci)"
  (cd "$node_example" && npm ci --no-audit --no-fund --loglevel=error)
fi
# axe-core, exactly as locked, for the accessibility checks of the search page test.
browser_tests="$REPO_ROOT/tests/e2e"
if [ "$browser_tests/package-lock.json" -nt "$browser_tests/node_modules/.package-lock.json" ]; then
  say "installing the browser test's packages (npm ci: axe-core)"
  (cd "$browser_tests" && npm ci --no-audit --no-fund --loglevel=error)
fi
go_example="$REPO_ROOT/examples/go"
if [ "$go_example/go.sum" -nt "$CARAVAN_LOCAL_DIR/go-example.downloaded" ]; then
  say "downloading the Go example consumer's modules"
  (cd "$go_example" && go mod download) && mkdir -p "$CARAVAN_LOCAL_DIR" \
    && touch "$CARAVAN_LOCAL_DIR/go-example.downloaded"
fi
