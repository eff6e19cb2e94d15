#!/usr/bin/env bash
# Builds scripts/helm/render.go (a `helm template` stand-in on helm's own engine: Go text/template +
# sprig) offline, from Debian's Go sources: golang-go, golang-github-masterminds-sprig-dev,
# golang-github-xeipuuv-gojsonschema-dev, golang-k8s-sigs-yaml-dev. Prints the binary's path.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-$PWD/.tmp/packaging/bin/helm-render}
mkdir -p "$(dirname "$OUT")"
if [ ! -x "$OUT" ] || [ scripts/helm/render.go -nt "$OUT" ]; then
  GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= GOCACHE="${GOCACHE:-$PWD/.tmp/packaging/go-cache}" \
    go build -o "$OUT" scripts/helm/render.go
fi
echo "$OUT"
