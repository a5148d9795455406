#!/usr/bin/env bash
# The Python environment of the SDK conformance tests and the reference clients
# (clients/python/): a virtual environment under target/ with the pinned packages of
# clients/python/requirements.txt, made (or brought up to date) when they differ.
# Needs python3 with venv and access to PyPI. Prints nothing when it is up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/sdk-venv
requirements=clients/python/requirements.txt
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
  exit 0
fi
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
