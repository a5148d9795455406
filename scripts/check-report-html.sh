#!/usr/bin/env bash
# Opens a results folder's report.html in headless Chromium and checks what a reader's
# browser would do with it: no console messages (the report has no scripts, so any
# message is a failure to load something) and no request for anything but the file
# itself. Saves a screenshot beside the report as report-screenshot.png.
#
#   scripts/check-report-html.sh results/burst-20261124T071608Z
#
# Chromium comes from Debian's `chromium` package; run as root, the script installs it
# when it is missing. Exit codes: 0 passed, 1 failed, 3 Chromium unavailable.
set -euo pipefail

dir=${1:?usage: scripts/check-report-html.sh RESULTS_DIR}
html=$(realpath "$dir/report.html")

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium package..."
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/dev/null 2>&1; then
      echo "chromium could not be installed" >&2
      exit 3
    fi
  else
    echo "chromium not found: install Debian's chromium package" >&2
    exit 3
  fi
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Flags: no background or component traffic, and every host name resolves to nothing,
# so even a stray reference could not leave the machine.
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --disable-default-apps --host-resolver-rules="MAP * ~NOTFOUND" \
  --user-data-dir="$work/profile" --enable-logging=stderr --log-level=0 \
  --log-net-log="$work/netlog.json" --window-size=1400,2400 \
  --screenshot="$dir/report-screenshot.png" "file://$html" 2>"$work/chromium.log" || {
  echo "chromium failed:" >&2
  tail -20 "$work/chromium.log" >&2
  exit 1
}

status=0
if grep -F ':CONSOLE' "$work/chromium.log" >"$work/console.txt"; then
  echo "console messages while loading the report:" >&2
  cat "$work/console.txt" >&2
  status=1
fi
python3 - "$work/netlog.json" <<'PY' || status=1
import json, sys
with open(sys.argv[1]) as f:
    text = f.read()
# A log cut short by the browser's exit lacks its closing brackets.
try:
    log = json.loads(text)
except json.JSONDecodeError:
    log = json.loads(text.rstrip().rstrip(",") + "]}")
start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
# Chromium's own services (clock, updater, accounts) start requests with the initiator
# "not an origin"; anything the page asks for carries the page's origin.
page_requests = sorted(
    {
        e["params"]["url"]
        for e in log.get("events", [])
        if e.get("type") == start_job
        and "url" in (e.get("params") or {})
        and e["params"].get("initiator") != "not an origin"
    }
)
if page_requests:
    print("the report requested:", *page_requests, sep="\n  ", file=sys.stderr)
    sys.exit(1)
PY
if [ ! -s "$dir/report-screenshot.png" ]; then
  echo "no screenshot was written" >&2
  status=1
fi
if [ "$status" = 0 ]; then
  echo "report.html: no console messages, no requests beyond the file; screenshot: $dir/report-screenshot.png"
fi
exit "$status"
