#!/usr/bin/env bash
# Everything the test suites need beyond npm packages, from Debian's packages; idempotent.
# - Ceph RGW (real S3 + STS) for the e2e suite: scripts/rgw/install.sh
# - redis-server for the shared rate-limit budget test
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/rgw/install.sh
if ! command -v redis-server >/dev/null 2>&1; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  echo "test deps: installing redis-server from apt"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
    || { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }
fi
# The package may start a system instance; the tests start their own on a free loopback port.
echo "test deps: redis-server $(redis-server --version | awk '{print $3}')"
