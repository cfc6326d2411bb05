#!/usr/bin/env bash
# `make demo`: one machine plays every role on the embedded defaults.
# site: init -> train -> evaluate -> export -> publish; central team: enroll -> approve;
# hub: import a case library -> diagnose a sample image (consensus arbiter: no generalist)
# -> serve the clinicians' page and API, printing its URL and a clinician token (SERVE=0 skips it).
set -euo pipefail
# DATA and DEMO_HOME may be relative to where the demo was started from.
[[ -n "${DATA:-}" && "$DATA" != /* ]] && DATA="$PWD/$DATA"
[[ -n "${DEMO_HOME:-}" && "$DEMO_HOME" != /* ]] && DEMO_HOME="$PWD/$DEMO_HOME"
cd "$(dirname "$0")/../.."
BIN="$PWD/.venv/bin"
DEMO_HOME="${DEMO_HOME:-$PWD/.demo}"
TASK="${TASK:-pneumonia}"
LABELS="${LABELS:-normal,pneumonia}"
MODALITY="${MODALITY:-paediatric chest X-ray}"
export GSCO_HOME="$DEMO_HOME/registry"
export GSCO_KEY_PASSPHRASE="${GSCO_KEY_PASSPHRASE:-demo-passphrase-not-for-production}"
# Nothing outside DEMO_HOME: caches, config and temporary files (matplotlib, onnxruntime,
# torch) go under it, and MLflow's usage telemetry (a call to the internet) is off.
export XDG_CACHE_HOME="$DEMO_HOME/cache" XDG_CONFIG_HOME="$DEMO_HOME/config" TMPDIR="$DEMO_HOME/tmp"
export MLFLOW_DISABLE_TELEMETRY=true
SITE="$DEMO_HOME/site"
MARKER="$DEMO_HOME/.gsco-demo"

step() { printf '\n\033[1;34m== %s\033[0m\n' "$*"; }

# The demo starts afresh, but only ever deletes a folder it made itself.
if [[ -d "$DEMO_HOME" && ! -e "$MARKER" && -n "$(ls -A "$DEMO_HOME")" ]]; then
  echo "error: DEMO_HOME=$DEMO_HOME is not empty and was not made by the demo: pick another folder" >&2
  exit 2
fi
mkdir -p "$DEMO_HOME"
touch "$MARKER"
# Resolved before anything is deleted: a bad DATA stops here and leaves the last demo intact.
RESOLVED=$("$BIN/python" deploy/demo/resolve_data.py "${DATA:-}" "$DEMO_HOME/data")
IFS=$'\t' read -r DATA_PATH DATA_DESC <<<"$RESOLVED"
find "$DEMO_HOME" -mindepth 1 -maxdepth 1 ! -name data ! -name .gsco-demo -exec rm -rf {} +
mkdir -p "$TMPDIR"
step "Demo data: $DATA_DESC"

step "Site: create the site and its signing key"
"$BIN/site-agent" init "$SITE" --name demo-hospital --task "$TASK" --labels "$LABELS" --modality "$MODALITY"

step "Central team: create the registry, the task and enroll the site key"
"$BIN/gsco-registry" init
"$BIN/gsco-registry" tasks create "$TASK" --labels "$LABELS" --modality "$MODALITY"
"$BIN/gsco-registry" sites enroll demo-hospital --public-key "$SITE/keys/site.pub"

step "Site: train a small specialist (resnet18, 28 px, 1 epoch)"
RUN_DIR=$("$BIN/site-agent" train --site "$SITE" --data "$DATA_PATH" --backbone resnet18 \
  --image-size 28 --epochs 1 --json | "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)[0]["run_dir"])')

step "Site: evaluate on the held-out split"
"$BIN/site-agent" evaluate "$RUN_DIR" --data "$DATA_PATH" --split test

step "Site: export (ONNX, anonymize, PHI scan, sign) and publish"
"$BIN/site-agent" export "$RUN_DIR"
PUBLISHED=$("$BIN/site-agent" publish "$RUN_DIR" --json)
echo "$PUBLISHED"
NAME=$(echo "$PUBLISHED" | "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)["name"])')
VERSION=$(echo "$PUBLISHED" | "$BIN/python" -c 'import json,sys; print(json.load(sys.stdin)["version"])')

step "Central team: verify and approve $NAME v$VERSION"
# Before approval `verify` must say "NOT approved" (exit 6): only a countersigned bundle is served.
if "$BIN/gsco-registry" verify "$NAME" "$VERSION"; then rc=0; else rc=$?; fi
if [[ $rc -ne 6 ]]; then
  echo "error: verify before approval exited $rc, expected 6 (NOT approved)" >&2
  exit 1
fi
echo "(not approved yet: expected before review)"
"$BIN/gsco-registry" approve "$NAME" "$VERSION" --reviewer demo-reviewer --note "make demo"
"$BIN/gsco-registry" verify "$NAME" "$VERSION"

step "Hub: import the reference case library and diagnose a held-out image"
# The library (also the consensus arbiter's calibration set) must be data the specialist did not
# train on: the hub refuses to calibrate on the training split (its digest is on the card).
LIBRARY_SPLIT=$("$BIN/python" -c 'import numpy as np,sys; print("val" if "val_images" in np.load(sys.argv[1]).files else "test")' "$DATA_PATH")
# The image diagnosed below is kept out of the library (held_out.py), so it cannot retrieve itself.
"$BIN/python" deploy/demo/held_out.py "$DATA_PATH" "$LIBRARY_SPLIT" "$DEMO_HOME/library.npz" "$DEMO_HOME/sample.png" "$LABELS"
"$BIN/gsco-hub" cases import --task "$TASK" --data "$DEMO_HOME/library.npz" --split "$LIBRARY_SPLIT"
"$BIN/gsco-hub" diagnose "$DEMO_HOME/sample.png" --task "$TASK"

step "Done. Everything lives under $DEMO_HOME (delete it with: make clean)"

if [[ "${SERVE:-1}" != 0 ]]; then
  step "Hub: serve the clinicians' page and the HTTP API"
  BIN="$BIN" exec bash deploy/demo/serve.sh
fi
