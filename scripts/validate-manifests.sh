#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml offline against the Kubernetes API schemas, strictly
# (unknown fields are errors), for the oldest and newest Kubernetes versions checked.
#
# Installs `kubernetes-validate` (pinned; it bundles the schemas) into a virtual
# environment under target/. Needs python3 with venv and access to PyPI once.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/k8s-venv
requirements="kubernetes-validate==1.37.0 jsonschema==4.26.0 referencing==0.37.0 PyYAML==6.0.4"
if [ ! -x "$venv/bin/kubernetes-validate" ] || ! "$venv/bin/pip" freeze 2>/dev/null | grep -q '^kubernetes-validate==1.37.0$'; then
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $requirements
fi

for version in 1.28.0 1.37.0; do
  "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" deploy/kubernetes/*.yaml
done
# What the schema cannot see: the Job runs as many pods as the shards it names.
"$venv/bin/python" - deploy/kubernetes/shards.yaml <<'PY'
import sys, yaml
job = yaml.safe_load(open(sys.argv[1]))
spec = job["spec"]
args = spec["template"]["spec"]["containers"][0]["args"]
shards = int(args[args.index("--shards") + 1])
if not (spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"] == shards):
    sys.exit(f"{sys.argv[1]}: completions ({spec['completions']}) and parallelism ({spec['parallelism']}) must both equal --shards ({shards}) in an Indexed Job")
PY
echo "deploy/kubernetes: valid for Kubernetes 1.28 and 1.37"
