#!/usr/bin/env bash
# Run a command inside the keypoint-estimation environment (.venv-pose: mediapipe 0.10.21, numpy 1.26),
# creating it on first use. It is separate from .venv because mediapipe needs numpy<2 and protobuf<5.
# Usage: bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py photos/ --output ann.csv
# POSE_PYTHON picks the interpreter that builds it (default python3; mediapipe 0.10.21 needs 3.9-3.12).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-pose"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$root/requirements-pose.txt" | cut -d' ' -f1)"
# One builder at a time: parallel callers (tests on several workers) wait for the first to finish.
exec 9>"$root/.venv-pose.lock"
flock 9
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  python="${POSE_PYTHON:-python3}"
  if ! "$python" -c 'import sys; sys.exit(not (3, 9) <= sys.version_info[:2] <= (3, 12))'; then
    echo "[with_pose_env] mediapipe 0.10.21 needs Python 3.9-3.12; $python is $("$python" -V 2>&1)." \
         "Set POSE_PYTHON=python3.12 (or another 3.9-3.12 interpreter)." >&2
    exit 2
  fi
  echo "[with_pose_env] installing requirements-pose.txt into $venv (first run only, about 1 minute)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  echo '*' > "$venv/.gitignore"  # keep git status clean (Python 3.13's venv does the same)
  "$venv/bin/python" -m pip install -q --upgrade pip
  "$venv/bin/python" -m pip install -q --no-deps --no-compile -r "$root/requirements-pose.txt"
  echo "$want" > "$stamp"
fi
flock -u 9
cd "$root"
export PATH="$venv/bin:$PATH"
# mediapipe imports matplotlib; a backend inherited from a Jupyter kernel (module://matplotlib_inline...) is
# not installed here and would break that import. The estimator draws nothing: use the file backend.
export MPLBACKEND=Agg
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
exec "$@"
