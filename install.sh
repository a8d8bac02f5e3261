#!/usr/bin/env bash
# Set up scalelab in ./.venv on a fresh Debian or Ubuntu machine.
#
#   bash install.sh           Python packages for running sweeps, fits and dashboards
#   bash install.sh --test    also what the tests need: Chromium and a PostgreSQL server
#
# torch is installed first and pinned to the CPU build 2.13.0: an unpinned torch pulls a
# CUDA build of several GB. On a GPU machine, install the CUDA build of torch into .venv
# before running this script and pip keeps it.
set -euo pipefail
cd "$(dirname "$0")"

with_test=0
for arg in "$@"; do
    case "$arg" in
        --test) with_test=1 ;;
        *) echo "install.sh: unknown option '$arg' (expected --test or nothing)" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    echo "install.sh: scalelab needs Python 3.11 or newer; $python is $("$python" --version 2>&1)." \
         "Set PYTHON=/path/to/python3.11 and run again." >&2
    exit 2
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
    .venv/bin/python -m pip install --quiet torch==2.13.0
fi

if [ "$with_test" = 1 ]; then
    .venv/bin/python -m pip install --quiet -e '.[test]'

    # Debian packages for the tests: Chromium for the dashboard tests (Playwright drives the
    # system browser; `playwright install` would download one) and a PostgreSQL server.
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
else
    .venv/bin/python -m pip install --quiet -e .
fi

echo "scalelab is installed in $(pwd)/.venv; run .venv/bin/scalelab --help"
