#!/usr/bin/env bash
# Fails (exit 1) when the checked-in stubs in roleplay_client/_generated/ differ
# from what regenerate.sh produces from ../../proto now.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

"$here/regenerate.sh" "$tmp/_generated" >/dev/null
if ! diff -r -u -x __pycache__ "$here/roleplay_client/_generated" "$tmp/_generated"; then
    echo "check_generated.sh: roleplay_client/_generated is out of date; run clients/python/regenerate.sh" >&2
    exit 1
fi
echo "generated stubs are up to date"
