#!/usr/bin/env bash
# The demo's last step (run.sh calls it unless SERVE=0): serve the clinicians' page and API on
# loopback, then print the page's URL and a fresh clinician token; Ctrl-C stops the service.
# Needs GSCO_HOME (the demo's registry home); PORT (default 8080) and BIN (the venv's bin) optional.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN="${BIN:-$PWD/.venv/bin}"
PORT="${PORT:-8080}"
: "${GSCO_HOME:?GSCO_HOME must name the demo registry home}"
LOG="$GSCO_HOME/hub-serve.log"

TOKEN=$("$BIN/gsco-hub" tokens create --role clinician --name demo-clinician --json |
  "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)["token"])')
"$BIN/gsco-hub" serve --host 127.0.0.1 --port "$PORT" >"$LOG" 2>&1 &
HUB_PID=$!
# On exit (Ctrl-C included) stop the service and wait until it has shut down.
trap 'kill "$HUB_PID" 2>/dev/null && wait "$HUB_PID" 2>/dev/null; true' EXIT
trap 'exit 130' INT TERM

# Ready once /readyz answers 200 (every task has an approved specialist loaded).
if ! "$BIN/python" - "$PORT" "$HUB_PID" <<'PY'
import os, sys, time
import httpx
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.time() + 300
while time.time() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(1)
    try:
        if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200:
            sys.exit(0)
    except httpx.HTTPError:
        pass
    time.sleep(0.5)
sys.exit(1)
PY
then
  echo "error: the hub service did not become ready on port $PORT; see $LOG" >&2
  exit 1
fi
echo "The hub is serving. Open the clinicians' page: http://127.0.0.1:$PORT/"
echo "Sign in with this clinician token (shown once): $TOKEN"
echo "Press Ctrl-C to stop the service (its log: $LOG)."
wait "$HUB_PID"
