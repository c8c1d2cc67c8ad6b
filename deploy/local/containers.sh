#!/usr/bin/env bash
# Everything the container tests (tests/containers) need, skipping what is there:
# Debian's podman (deploy/local/podman.sh), the stand-ins of the official images
# (deploy/local/standins.sh) and the project's image, built from the Dockerfile users
# get as caravan:latest. Podman reads deploy/containers/containers.conf (runc, lowered
# ulimits), named by CONTAINERS_CONF, so the machine's own configuration is untouched.
source "$(dirname "$0")/common.sh"
cd "$REPO_ROOT"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO_ROOT/deploy/containers/containers.conf}"

deploy/local/podman.sh
deploy/local/standins.sh
say "building caravan:latest from the Dockerfile"
start=$SECONDS
# Docker format: OCI images drop HEALTHCHECK. The host's network: the build installs the
# lock from the package index. Layers cached: a rebuild after a code change reuses the
# locked dependencies' layer.
podman build --quiet --format docker --network host --pull=never -t caravan:latest . >/dev/null
podman image prune --force >/dev/null
say "built caravan:latest in $((SECONDS - start)) s"
