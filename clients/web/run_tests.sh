#!/usr/bin/env bash
# Installs the locked dependencies (npm ci), checks that src/gen matches
# ../../proto and that dist/ matches the sources, then runs the tests
# (node --test with playwright-core driving Debian's chromium) against the
# server binary: $ROLEPLAY_SERVER_BIN, else <repo>/target/debug/roleplay-server.
# Needs node >= 20, npm and /usr/bin/chromium (apt-get install -y chromium).
# Extra arguments go to `node --test`.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

for tool in node npm; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run_tests.sh: '$tool' not found: install Node.js 20 or later" >&2
        exit 1
    fi
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)'; then
    echo "run_tests.sh: Node.js 20 or later is needed (found $(node --version))" >&2
    exit 1
fi
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "run_tests.sh: $chromium not found: apt-get update && apt-get install -y chromium (or set CHROMIUM_PATH)" >&2
    exit 1
fi
server="${ROLEPLAY_SERVER_BIN:-$here/../../target/debug/roleplay-server}"
if [ ! -x "$server" ]; then
    echo "run_tests.sh: no server binary at $server: run \`cargo build\`, or set ROLEPLAY_SERVER_BIN" >&2
    exit 1
fi
echo "run_tests.sh: server binary $server"

npm ci --no-audit --no-fund --loglevel=error
npm run --silent check-generated
npm run --silent typecheck
npm run --silent check-dist
npm run --silent build-tests
node --test --test-concurrency=1 --test-timeout=120000 "$@" build/test/*.test.js
