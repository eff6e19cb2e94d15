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
# - chromium for the real-browser suite (test/browser), driven by playwright-core: Debian's build,
#   never a browser downloaded by a test tool; and the AWS CLI and jq the CI-example tests run
apt_install() { # package...: waits for a dpkg lock held by another install instead of failing
  local SUDO=() apt=(apt-get -y --no-install-recommends -o DPkg::Lock::Timeout=600)
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  echo "test deps: installing $* from apt"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@" \
    || { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" update && "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "$@"; }
}
[ -x /usr/bin/chromium ] || apt_install chromium
command -v aws >/dev/null 2>&1 || apt_install awscli
command -v jq >/dev/null 2>&1 || apt_install jq # the GitHub Actions example reads its ID token with jq
echo "test deps: $(/usr/bin/chromium --version 2>/dev/null), $(aws --version 2>&1 | cut -d' ' -f1)"
# - the packaging suite (test/packaging): Docker engine + Compose v1 (its own dockerd, started and
#   stopped by the test), debootstrap for the offline base image, Go + sprig + gojsonschema +
#   sigs.k8s.io/yaml to build the chart renderer (scripts/helm/render.go), promtool. One dpkg query
#   when all are present.
PACKAGING_DEBS=(docker.io docker-compose debootstrap golang-go golang-github-masterminds-sprig-dev
  golang-github-xeipuuv-gojsonschema-dev golang-k8s-sigs-yaml-dev prometheus)
packaging_missing=()
for p in "${PACKAGING_DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || packaging_missing+=("$p")
done
if [ ${#packaging_missing[@]} -gt 0 ]; then
  SUDO=()
  [ "$(id -u)" -eq 0 ] || SUDO=(sudo)
  echo "test deps: installing ${packaging_missing[*]} from apt"
  # No package may start its daemon here (docker.io's would create docker0 and rewrite iptables;
  # prometheus' would bind :9090): a policy-rc.d that refuses, only if the machine has none.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee /usr/sbin/policy-rc.d >/dev/null
    "${SUDO[@]}" chmod 0755 /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt_packaging() { "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -y --no-install-recommends -o DPkg::Lock::Timeout=600 "$@"; }
  apt_packaging install "${packaging_missing[@]}" || { apt_packaging update && apt_packaging install "${packaging_missing[@]}"; } || echo "test deps: could not install ${packaging_missing[*]} (the packaging suite will skip what needs them)"
  [ "$own_policy" -eq 0 ] || "${SUDO[@]}" rm -f /usr/sbin/policy-rc.d
fi
echo "test deps: packaging: $(dockerd --version 2>/dev/null | cut -d, -f1), $(go version 2>/dev/null | cut -d' ' -f3), $(promtool --version 2>/dev/null | head -n1 | cut -d' ' -f1-3)"
