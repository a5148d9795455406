#!/usr/bin/env bash
# Builds the container image (Dockerfile) as llmbench:latest, where a container engine
# answers and the base images can be had; otherwise says the build was skipped and why
# (exit 0), since machines without an engine or a registry cannot build it.
set -euo pipefail
cd "$(dirname "$0")/.."

engine=${CONTAINER_ENGINE:-docker}
if ! command -v "$engine" >/dev/null || ! "$engine" info >/dev/null 2>&1; then
  echo "SKIPPED: container image build ($engine: no container engine answers here)"
  exit 0
fi
for base in $(sed -n 's/^FROM \([^ ]*\).*/\1/p' Dockerfile); do
  if ! "$engine" image inspect "$base" >/dev/null 2>&1 && ! "$engine" pull --quiet "$base" >/dev/null 2>&1; then
    echo "SKIPPED: container image build (base image $base cannot be pulled here)"
    exit 0
  fi
done
"$engine" build --tag llmbench:latest .
"$engine" run --rm llmbench:latest --version
