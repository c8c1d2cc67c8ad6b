#!/bin/sh
# Entrypoint of the redis test stand-in (deploy/containers/standins/redis), doing what
# the official image's does for the compose files: only the tests use this image.
set -e

# `redis-server` is implied by a first argument that is an option or a config file.
case "$1" in
  -*|*.conf) set -- redis-server "$@" ;;
esac

if [ "$1" = redis-server ]; then
  # Run as redis, owning /data (the official image's gosu step; setpriv is util-linux).
  if [ "$(id -u)" = 0 ]; then
    find . \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$0" "$@"
  fi
  # The official build turns protected mode off by default; a config file or a later
  # --protected-mode still decides.
  case "${2:-}" in
    *.conf) ;;
    *) shift; set -- redis-server --protected-mode no "$@" ;;
  esac
fi

# The official image's umask for the data files.
if [ "$(umask)" = 0022 ]; then umask 0077; fi
exec "$@"
