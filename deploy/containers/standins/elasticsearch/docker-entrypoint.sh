#!/bin/bash
# Entrypoint of the elasticsearch test stand-in (deploy/containers/standins/elasticsearch),
# doing what the official image's does for the compose files: only the tests use it.
set -e

# `eswrapper` (the default) or `elasticsearch [options]` start Elasticsearch, with the
# options given; any other command runs as given (bash, elasticsearch-certutil, ...).
if [[ "${1:-}" == eswrapper || "$(basename -- "${1:-}")" == elasticsearch ]]; then
  shift
else
  exec "$@"
fi

# NAME_FILE variables (ELASTIC_PASSWORD_FILE, ...) become NAME, as in the official image.
source /usr/share/elasticsearch/bin/elasticsearch-env-from-file

# ELASTIC_PASSWORD: the bootstrap password of the user elastic, kept in the keystore.
# Settings come from the environment: with the distribution type `docker`,
# Elasticsearch turns variables like discovery.type or ES_SETTING_DISCOVERY_TYPE into
# settings itself.
if [[ -n "${ELASTIC_PASSWORD:-}" ]]; then
  [[ -f /usr/share/elasticsearch/config/elasticsearch.keystore ]] || elasticsearch-keystore create
  if ! elasticsearch-keystore has-passwd --silent; then
    if ! elasticsearch-keystore list | grep -q '^bootstrap.password$'; then
      printf '%s\n' "$ELASTIC_PASSWORD" | elasticsearch-keystore add -x bootstrap.password
    fi
  elif ! printf '%s\n' "${KEYSTORE_PASSWORD:-}" | elasticsearch-keystore list \
      | grep -q '^bootstrap.password$'; then
    printf '%s\n%s\n' "${KEYSTORE_PASSWORD:-}" "$ELASTIC_PASSWORD" \
      | elasticsearch-keystore add -x bootstrap.password
  fi
fi

# tini (the container's init) forwards signals to Elasticsearch and reaps children.
exec /usr/share/elasticsearch/bin/elasticsearch "$@" <<<"${KEYSTORE_PASSWORD:-}"
