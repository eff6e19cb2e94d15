#!/usr/bin/env bash
# The project's test command (`npm test`): unit + app suites, the secret scan over their logs,
# the end-to-end suite against a real S3 + STS server (Ceph RGW on loopback, installed if
# missing), and the LocalStack suite where a Docker engine exists. Ends with one totals line.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=.tmp/test-results
rm -rf "$OUT"; mkdir -p "$OUT"
export CREDVEND_TEST_CAPTURE_DIR="$PWD/$OUT/capture"
export AWS_SDK_JS_SUPPRESS_NODE_VERSION_WARNING=1 # Node 20 is our target; the SDK warns about 2027
fail=0
run() { # name, vitest args...
  local name=$1; shift
  echo; echo "=== $name ==="
  npx vitest run "$@" --reporter=default --reporter=json --outputFile.json="$OUT/$name.json" || fail=1
}

bash scripts/install-test-deps.sh || { echo "could not install the test dependencies (Debian packages)"; fail=1; }
run unit-app --project unit --project app
run secret-scan -c vitest.scan.config.ts

echo; echo "=== build ==="
npm run build --silent || fail=1
run e2e --project e2e
run browser --project browser
run fault --project fault
run localstack --project localstack
run packaging --project packaging

node scripts/totals.mjs "$OUT"/*.json || fail=1
exit $fail
