#!/usr/bin/env bash
# deploy/local/standins.sh [--force]
# Builds, for the container tests, local stand-ins of the official images the project's
# files name (the Dockerfile's python base, the compose files' redis and elasticsearch),
# which the test machines cannot pull: each is tagged localhost/NAME:TAG, which podman
# finds for the short name the files use, so `podman build` of the Dockerfile and
# podman-compose of the compose files run them without a registry. Test stand-ins only: the Dockerfile and the compose
# files users get keep the official images.
# All three are built with podman (deploy/local/podman.sh installs it) from the
# Containerfiles in deploy/containers/standins/, on one base: a Debian bookworm rootfs
# made once by mmdebstrap from this machine's apt sources (cached in
# $CARAVAN_LOCAL_DIR/containers) and carrying this machine's CA bundle. The
# Elasticsearch one is the distribution deploy/local/provision.sh fetched, with the JDK
# at $CARAVAN_ES_JAVA_HOME.
# An image already there is kept, unless its Containerfile folder changed since (a
# label records a digest of it) or --force (which also remakes the rootfs) is given.
source "$(dirname "$0")/common.sh"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$REPO_ROOT/deploy/containers/containers.conf}"

force=0
case "${1:-}" in
  --force) force=1 ;;
  "") ;;
  *) say "usage: $0 [--force]"; exit 2 ;;
esac

standins="$REPO_ROOT/deploy/containers/standins"
rootfs="$CARAVAN_LOCAL_DIR/containers/bookworm-rootfs.tar"
base=localhost/caravan-standin-base:bookworm

# The names exactly as the files spell them, in podman's local namespace.
qualify() { case "$1" in */*) echo "localhost/${1#*/}" ;; *) echo "localhost/$1" ;; esac; }
python_image="$(qualify "$(sed -n 's/^ARG PYTHON_IMAGE=//p' "$REPO_ROOT/Dockerfile")")"
compose_image() {
  sed -n "s/^ *image: \($1:[^ ]*\) *\$/\1/p" "$REPO_ROOT/docker-compose.yml" | head -n 1
}
redis_image="$(qualify "$(compose_image redis)")"
es_image="$(qualify "$(compose_image elasticsearch)")"
for image in "$python_image" "$redis_image" "$es_image"; do
  case "$image" in *:?*) ;; *) say "could not read an image name ($image)"; exit 1 ;; esac
done
# The cluster file must name the same ones (no stand-in is built for any other).
for image in $(sed -n 's/^ *image: \(\(redis\|elasticsearch\):[^ ]*\) *$/\1/p' \
                 "$REPO_ROOT/docker-compose.cluster.yml" | sort -u); do
  case "$(qualify "$image")" in
    "$redis_image"|"$es_image") ;;
    *) say "warning: docker-compose.cluster.yml names $image, which has no stand-in" ;;
  esac
done

for tool in podman mmdebstrap; do
  command -v "$tool" >/dev/null || { say "no $tool: run deploy/local/podman.sh"; exit 1; }
done
if [ ! -x "$ES_HOME/bin/elasticsearch" ] || [ ! -x "$CARAVAN_ES_JAVA_HOME/bin/java" ]; then
  say "no Elasticsearch at $ES_HOME or no JDK at $CARAVAN_ES_JAVA_HOME: run deploy/local/provision.sh"
  exit 1
fi

# The rootfs: minbase (essential packages and apt) plus ca-certificates, without
# documentation, manual pages and translations. apt inside uses this machine's Debian
# sources and its Acquire:: settings (proxy, date checks), and trusts its CA bundle.
if [ "$force" = 1 ] || [ ! -s "$rootfs" ]; then
  sources=()
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -s "$file" ] && grep -q '^[^#]*debian' "$file" && sources+=("$file")
  done
  if [ "${#sources[@]}" -eq 0 ]; then say "no Debian apt sources in /etc/apt"; exit 1; fi
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  # One-line Acquire:: settings only (a proxy, Check-Valid-Until, ...).
  cat /etc/apt/apt.conf /etc/apt/apt.conf.d/* 2>/dev/null \
    | grep '^[[:space:]]*Acquire::[^{}]*;[[:space:]]*$' > "$work/acquire.conf" || true
  aptopts=(--aptopt='APT::Install-Recommends "false"')
  [ -s "$work/acquire.conf" ] && aptopts+=(--aptopt "$work/acquire.conf")
  say "making the bookworm rootfs $rootfs (mmdebstrap; sources: ${sources[*]})"
  mkdir -p "$(dirname "$rootfs")"
  # merged /usr by the usr-is-merged hook, not the usrmerge package (perl, 50 MB).
  mmdebstrap --quiet --variant=minbase --include=ca-certificates "${aptopts[@]}" \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook='if [ -d /usr/local/share/ca-certificates ]; then
        cp -R /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"
        chroot "$1" update-ca-certificates >/dev/null 2>&1; fi' \
    --customize-hook='upload /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt' \
    bookworm "$work/rootfs.tar" "${sources[@]}" >"$work/mmdebstrap.log" 2>&1 \
    || { cat "$work/mmdebstrap.log" >&2; say "mmdebstrap failed"; exit 1; }
  mv "$work/rootfs.tar" "$rootfs"
  imported=0
else
  imported=1
fi

if [ "$imported" = 0 ] || ! podman image exists "$base"; then
  say "importing $rootfs as $base"
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$rootfs" "$base" >/dev/null
fi

# build IMAGE FOLDER [podman build options]: unless already built from this folder
# (and from $also: what else goes in, such as the plugins of the distribution).
build() {
  local image="$1" folder="$standins/$2"; shift 2
  local digest
  digest="$( { (cd "$folder" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
               printf '%s' "${also:-}"; } | sha256sum | cut -c1-16)"
  if [ "$force" != 1 ] && [ "$(podman image inspect --format \
      '{{ index .Labels "org.caravan.standin" }}' "$image" 2>/dev/null)" = "$digest" ]; then
    return 0
  fi
  say "building the stand-in $image"
  local start=$SECONDS previous
  previous="$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
  # Docker format (OCI drops HEALTHCHECK); no cached intermediate images: the label
  # decides what to rebuild.
  podman build --quiet --format docker --network host --pull=never --layers=false \
    --build-arg BASE="$base" --label org.caravan.standin="$digest" \
    --tag "$image" "$@" "$folder" >/dev/null
  say "built $image in $((SECONDS - start)) s"
  # The image it replaces, now untagged, unless a container still uses it.
  if [ -n "$previous" ] && [ "$(podman image inspect --format '{{.Id}}' "$image")" != "$previous" ]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
}

build "$python_image" python
build "$redis_image" redis
# The analysis plugin (deploy/local/es-plugin.sh) goes in with the distribution.
also="$(cat "$ES_HOME"/plugins/*/stable-plugin-descriptor.properties 2>/dev/null || true)" \
  build "$es_image" elasticsearch --build-context es="$ES_HOME" \
  --build-context jdk="$CARAVAN_ES_JAVA_HOME"
