#!/usr/bin/env bash
# Installs the locked dependencies (npm ci), checks that src/gen matches
# ../../proto, builds, and runs the tests (node --test) against the server
# binary: $ROLEPLAY_SERVER_BIN, else <repo>/target/debug/roleplay-server.
# Needs only node >= 20 and npm. Extra arguments go to `node --test`.
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

npm ci --no-audit --no-fund --loglevel=error
npm run --silent check-generated
npm run --silent build
node --test --test-timeout=55000 "$@" dist/test/*.test.js
