#!/usr/bin/env bash
# Installs roleplay-client with its test extra into clients/python/.venv,
# checks that the generated stubs match ../../proto, and runs the tests
# against the server binary ($ROLEPLAY_SERVER_BIN, else
# <repo>/target/debug/roleplay-server). Extra arguments go to pytest.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
python="${PYTHON:-python3}"
venv="$here/.venv"

if ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    if ! "$python" -m venv "$venv"; then
        echo "run_tests.sh: '$python -m venv' failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2
        exit 1
    fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'

PYTHON="$venv/bin/python" "$here/check_generated.sh"
"$venv/bin/python" -m pytest -q "$@"
