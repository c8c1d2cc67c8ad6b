#!/usr/bin/env bash
# The chunk table's Rust (shared/language/chunks): formatted and clippy-clean, where the
# toolchain has rustfmt and clippy (rustup's has both; Debian 12's cargo-web neither).
source "$(dirname "$0")/common.sh"
manifest="$REPO_ROOT/shared/language/chunks/Cargo.toml"
if cargo fmt --version >/dev/null 2>&1 && cargo clippy --version >/dev/null 2>&1; then
  cargo fmt --check --manifest-path "$manifest"
  cargo clippy --quiet --locked --release --manifest-path "$manifest" -- -D warnings
else
  say "no rustfmt or clippy here: the chunk table's Rust is not linted"
fi
