#!/usr/bin/env bash
# Conformance of the mock with the official OpenAI and Anthropic Python SDKs.
#
# Installs the SDKs (pinned) into a virtual environment under target/
# (scripts/python-venv.sh), builds llmbench, starts `llmbench mock` on a free loopback
# port, runs tests/sdk/ with pytest against it, and stops the mock; then runs
# scenarios/python-asyncio.toml in a reduced form (scripts/python-asyncio-ci.sh). Needs
# python3 with venv and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/sdk-venv
scripts/python-venv.sh

cargo build --quiet
log=$(mktemp)
target/debug/llmbench mock tests/sdk/mock.toml --port 0 >"$log" 2>&1 &
mock=$!
trap 'kill "$mock" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 100); do
  grep -q "listening on" "$log" && break
  sleep 0.1
done
url=$(sed -n 's/^llmbench mock listening on //p' "$log")
if [ -z "$url" ]; then
  echo "the mock did not start:" >&2
  cat "$log" >&2
  exit 1
fi
LLMBENCH_MOCK_URL=$url "$venv/bin/pytest" -q tests/sdk
scripts/python-asyncio-ci.sh
