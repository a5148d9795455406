#!/usr/bin/env bash
# Conformance of the mock with the official OpenAI and Anthropic Python SDKs.
#
# Installs the SDKs (pinned) into a virtual environment under target/, builds llmbench,
# starts `llmbench mock` on a free loopback port, runs tests/sdk/ with pytest against
# it, and stops the mock. Needs python3 with venv and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/sdk-venv
# h2 lets httpx speak HTTP/2, for the test of the mock's h2c.
requirements="openai==3.54.0 anthropic==2.12.0 pytest==8.4.2 h2==4.3.0"
installed=$("$venv/bin/pip" freeze 2>/dev/null || true)
missing=0
for requirement in $requirements; do
  grep -qx "$requirement" <<<"$installed" || missing=1
done
if [ ! -x "$venv/bin/pytest" ] || [ "$missing" = 1 ]; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
fi

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
