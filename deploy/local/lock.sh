#!/usr/bin/env bash
# Refreshes the lock files from pyproject.toml to the newest versions it allows
# (`make lock`); pass --no-upgrade to add a new dependency without moving the rest.
# requirements.lock: what the services run on and are built with (the image installs only it).
# requirements-dev.lock: the same versions plus the tools and tests (the venv, CI),
# resolved with requirements.lock as a constraint so the two never disagree.
# No index URL is written: the files name versions and hashes, not a registry.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"

upgrade=--upgrade
if [ "${1:-}" = "--no-upgrade" ]; then upgrade=; fi
compile=("$VENV_DIR/bin/pip-compile" --quiet $upgrade --generate-hashes --allow-unsafe
         --no-emit-index-url --no-emit-find-links --strip-extras)
# Build dependencies too (setuptools): Caravan itself is built from the lock, not from
# an isolated build environment that would take the newest setuptools.
"${compile[@]}" --all-build-deps --output-file requirements.lock pyproject.toml
"${compile[@]}" --extra dev --all-build-deps --constraint requirements.lock \
  --output-file requirements-dev.lock pyproject.toml
say "locked $(grep -c '^[A-Za-z0-9]' requirements.lock) runtime and $(grep -c '^[A-Za-z0-9]' requirements-dev.lock) development packages"
