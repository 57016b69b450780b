#!/usr/bin/env bash
# Install what emachi needs on a fresh Debian machine (run as root): system packages from Debian,
# Python packages from PyPI into ./.venv. `--test` adds what the tests need (Chromium, Redis,
# PostgreSQL, whose initdb and pg_ctl the tests run a private server with, HAProxy, Node.js for the
# JS codec mirror tests, fonts, sox): under CI=true a test whose tool is missing fails instead of
# skipping (tests/tools.py).
set -euo pipefail
cd "$(dirname "$0")/.."

debs=(python3-venv espeak-ng)
if [[ "${1:-}" == "--test" ]]; then
  debs+=(chromium redis-server postgresql haproxy nodejs fonts-noto-cjk sox)
fi
missing=()
for d in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$d" 2>/dev/null | grep -q "install ok installed" || missing+=("$d")
done
if ((${#missing[@]})); then
  echo "install: Debian packages: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

py=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$py" -m venv .venv
fi
extra=""
[[ "${1:-}" == "--test" ]] && extra="[test]"
log=.venv/install.log
if ! { .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip &&
       .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extra}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "install: pip failed (log above, also in $log)" >&2
  exit 1
fi
echo "install: Python packages ready in .venv"
# numba compiles the per-tick kernels on their first import and caches them beside their modules
# (__pycache__); compile them here, once, so that no server start or test waits for it
if ! .venv/bin/python -c "import server.app" >>"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "install: the server does not import (log above, also in $log)" >&2
  exit 1
fi
echo "install: kernels compiled"
