#!/usr/bin/env bash
# The accelerator benchmark (scripts/benchmarks/accelerator.py) on a GPU machine, in one call of under 8 minutes.
#
# The GPU machine has Python 3.12 and JAX (CUDA) but no TensorFlow and no registry: the benchmark runs the
# Keras models on the JAX backend, and the keras wheel and its two missing dependencies travel as wheels.
#
# 1. Here (any machine with pip and a registry), in the repository root, once:
#      python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#        -d .whl keras==3.15.1 namex optree
#    (2.8 MB: keras-3.15.1-py3-none-any, namex-0.1.0-py3-none-any, optree-0.20.0-cp312 manylinux_2_28.)
#    keras' other needs (absl-py, h5py, ml-dtypes, numpy, packaging, rich) are in the GPU image. Never commit .whl/.
# 2. On the GPU machine, from the repository root (the device tool: carry [".whl"] if .whl/ is git-ignored;
#    an untracked, not ignored .whl/ travels anyway), with timeout_s >= 540:
#      bash scripts/device/run_accelerator.sh
#    Results in $OUT: accelerator.json (rewritten after every row), accelerator.log, profile/ (a jax.profiler
#    trace of 256x256 full mixed_bfloat16 batch 32, for TensorBoard's profile plugin or Perfetto), env.txt.
#
# Budget: ACCEL_BUDGET seconds (default 330) for the table; the benchmark starts no row it estimates will not
# fit (compile + steps, from the rows already run), and a hard stop at ACCEL_HARD_STOP seconds (default 450)
# ends the whole call before 8 minutes even if one compile runs long. Rows run most useful first: the paper's
# batch and batch 32 of the full model (bf16, then fp32), the inference rows, dsc, and then batches 8/16/64.
# Compile times on the GPU are not known in advance (the 2-core CPU needs 40-125 s per train step compile):
# whatever did not fit is listed as "skipped (time budget)" in the JSON, to run in a later call with --groups.
set -u
START=$SECONDS
OUT=${OUT:-/tmp/accelerator-out}
BUDGET=${ACCEL_BUDGET:-330}
HARD_STOP=${ACCEL_HARD_STOP:-450}
mkdir -p "$OUT"

PYTHON=${PYTHON:-python3}
if [ -z "${ACCEL_SKIP_INSTALL:-}" ]; then  # ACCEL_SKIP_INSTALL=1: keras is installed already (a dry run on a CPU)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the carried wheels from .whl/ failed (see the download command at the top)"; exit 1; }
fi
export PYTHONPATH=/tmp/site:$PWD
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# No preallocation: JAX would otherwise reserve 75% of the GPU at start. peak_bytes_in_use counts what the
# allocator handed out either way, but on demand the pool grows only as needed and cuDNN/cuBLAS workspaces
# outside it still fit; the fraction raises the allocator's limit from 75% so that "OOM" in the batch sweep
# means the card is really full (about 90% of it), not a default cap.
export XLA_PYTHON_CLIENT_PREALLOCATE=false XLA_PYTHON_CLIENT_MEM_FRACTION=0.90

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  "$PYTHON" - <<'EOF'
import importlib, sys
versions = {}
for name in ("jax", "jaxlib", "keras", "numpy", "optree", "namex", "absl", "rich", "h5py", "ml_dtypes"):
    try:
        versions[name] = getattr(importlib.import_module(name), "__version__", "present")
    except Exception as error:  # a missing keras dependency: say which, before the benchmark fails on it
        versions[name] = f"MISSING ({type(error).__name__}: {error})"
print("python", sys.version.split()[0], versions)
import jax
print("devices", jax.devices())
EOF
} 2>&1 | tee "$OUT/env.txt"

ORDER=256x256/full/mixed_bfloat16,128x64/full/mixed_bfloat16
ORDER=$ORDER,256x256/generator/mixed_bfloat16,128x64/generator/mixed_bfloat16
ORDER=$ORDER,256x256/generator/float32,128x64/generator/float32
ORDER=$ORDER,256x256/full/float32,128x64/full/float32
ORDER=$ORDER,256x256/dsc/mixed_bfloat16,128x64/dsc/mixed_bfloat16,256x256/dsc/float32,128x64/dsc/float32

LEFT=$((BUDGET - (SECONDS - START)))
STOP=$((HARD_STOP - (SECONDS - START)))
set -o pipefail
# ACCEL_EXTRA_ARGS: appended, so they override the above (e.g. "--width 0.0625 --steps 1" for a CPU dry run).
# shellcheck disable=SC2086
timeout -s INT "$STOP" "$PYTHON" scripts/benchmark.py accelerator --groups "$ORDER" --batches paper,32,8,16,64 \
  --steps 8 --warmup 2 --inference-batches 64,1 --time-budget "$LEFT" --json "$OUT/accelerator.json" \
  --profile "$OUT/profile" --profile-row 256x256/full/mixed_bfloat16/32 --profile-steps 2 ${ACCEL_EXTRA_ARGS:-} \
  2>&1 | tee "$OUT/accelerator.log"
STATUS=$?
echo "benchmark exit status $STATUS after $((SECONDS - START)) s (124/130: stopped at the hard stop; the JSON holds every finished row)"
ls -la "$OUT" "$OUT/profile" 2>/dev/null | head -30
exit 0
