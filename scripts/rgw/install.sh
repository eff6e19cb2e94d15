#!/usr/bin/env bash
# Install what scripts/rgw/start.sh needs: Ceph RGW (S3 + STS), one mon, one memstore OSD, and curl,
# from Debian's own packages (tested on Debian 12 "bookworm": Ceph 16.2.15).
# Idempotent: does nothing when every tool is already on PATH. About 64 MB download, ~30 s.
# No daemon is started by the packages; start.sh starts its own on loopback.
set -euo pipefail

need=(radosgw ceph-mon ceph-osd radosgw-admin monmaptool ceph curl)
missing=()
for t in "${need[@]}"; do command -v "$t" >/dev/null 2>&1 || missing+=("$t"); done
if [ ${#missing[@]} -eq 0 ]; then
  echo "rgw install: all tools present ($(radosgw --version 2>/dev/null | awk '{print $3}'))"
  exit 0
fi
echo "rgw install: missing ${missing[*]}; installing from apt"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "rgw install: not root and no sudo" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd curl

for t in "${need[@]}"; do
  command -v "$t" >/dev/null 2>&1 || { echo "rgw install: $t still missing after apt-get install" >&2; exit 1; }
done
echo "rgw install: done ($(radosgw --version 2>/dev/null | awk '{print $3}'))"
