#!/usr/bin/env bash
# Create .venv and install seqae with its test tools; torch first, pinned to the local CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
# a real Redis server for the tests of the Redis state store (Debian's package)
if ! command -v redis-server >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    (apt-get install -y -q redis-server || (apt-get update -q && apt-get install -y -q redis-server)) >/dev/null 2>&1 \
      || echo "note: could not install redis-server; the Redis tests need it" >&2
  else
    echo "note: redis-server is not installed (apt-get install redis-server); the Redis tests need it" >&2
  fi
fi
