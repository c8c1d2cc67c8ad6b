#!/usr/bin/env bash
# Installs what the container tests need, skipping whatever is already there: Debian's
# podman and buildah with the runc runtime (crun refuses hybrid cgroup hierarchies),
# netavark and aardvark-dns (containers find each other by name), and mmdebstrap (the
# stand-in images' base, deploy/local/standins.sh). Needs root (apt-get); changes no
# configuration: the tests point podman at deploy/containers/containers.conf through
# CONTAINERS_CONF. Test stand-ins only: the files users get keep the official images.
source "$(dirname "$0")/common.sh"

packages=(podman buildah runc netavark aardvark-dns iptables catatonit mmdebstrap)
missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f '${Status}\n' "$package" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$package")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${missing[*]}: run $0 as root (apt-get)"; exit 1
  fi
  say "installing ${missing[*]}"
  apt-get update -qq
  # Without recommends: fuse-overlayfs, slirp4netns and the rest serve rootless use;
  # as root podman uses the kernel's overlay and netavark.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi
