#!/usr/bin/env bash
# One task of a Slurm job (one task per node): sets who the workers are from Slurm's variables, then runs the command.
#   TensorFlow (default): exports TF_CONFIG, the node list as workers, this task's index SLURM_PROCID (0 the chief).
#   KERAS_BACKEND=jax: appends --coordinator FIRST_NODE:PORT --num-processes N --process-id SLURM_PROCID.
# PORT: $DGAN_PORT, else 12345. Usage (in an sbatch script): srun bash docs/scale_out/slurm_task.sh python scripts/train.py ...
set -euo pipefail
port=${DGAN_PORT:-12345}
mapfile -t hosts < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ "${#hosts[@]}" -ne "$SLURM_NTASKS" ]; then
  echo "error: $SLURM_NTASKS tasks on ${#hosts[@]} nodes ($SLURM_JOB_NODELIST): give one task per node" \
       "(#SBATCH --ntasks-per-node=1); each task trains on all of its node's GPUs" >&2
  exit 2
fi
if [ "${KERAS_BACKEND:-tensorflow}" = jax ]; then
  exec "$@" --coordinator "${hosts[0]}:$port" --num-processes "$SLURM_NTASKS" --process-id "$SLURM_PROCID"
fi
workers=""
for host in "${hosts[@]}"; do workers="$workers${workers:+, }\"$host:$port\""; done
export TF_CONFIG="{\"cluster\": {\"worker\": [$workers]}, \"task\": {\"type\": \"worker\", \"index\": $SLURM_PROCID}}"
exec "$@"
