"""Train a Deformable GAN variant. Running the same command again resumes from the last checkpoint.

Examples:
  python scripts/train.py                                   # synthetic data (created on first use), dsc
  python scripts/train.py --dataset market --variant full
  python scripts/train.py --dataset fashion --variant full --vgg-weights ~/vgg19_notop.h5
  python scripts/train.py --run runs/market-full            # resume any run from its config.json alone
  python scripts/train.py --loss-weight g_reconstruction=50 # a generator loss term's weight
  KERAS_BACKEND=jax python scripts/train.py --iterations 100
  TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]}, "task": {"type": "worker", "index": 0}}' \
    python scripts/train.py --run /shared/runs/market-full    # one of two workers (README: Scale out)
  KERAS_BACKEND=jax python scripts/train.py --coordinator host1:1234 --num-processes 2 --process-id 0 --run ...

Before any work the run folder's paths are checked and its lock taken (RUN/train.lock: one trainer per folder).
A start that would replace a finished generator.keras (its checkpoints gone) or go back in iterations is refused,
writing nothing; a run already at --iterations writes its samples and generator again and says so.

Exit codes: 0 done; 2 an error in the input (flags, config.json, data, checkpoints, a file that cannot be
written, a run folder in use or refused as above), with a message naming the file; 3 training diverged (NaN/Inf
loss); 130 / 143 stopped by Ctrl-C / SIGTERM after saving a checkpoint of the current iteration (run the same
command again to resume); 138 a worker of a multi-worker job was lost, or the workers did not all start (start them
all again to resume from the last checkpoint).
"""

import argparse
import contextlib
import os
import sys
from pathlib import Path

from dgan_tf.cli.arguments import add_run_argument, image_size_arg, positive_int, program_parser, run_reporting_errors
from dgan_tf.data.datasets import DATASETS
from dgan_tf.options import FEATURES, HEATMAPS, NORMS, PART_MAXES, PRECISIONS, VGG_MEANS, WARP_GRADIENTS, WARP_SAMPLINGS
from dgan_tf.training.cluster import DEFAULT_JOIN_TIMEOUT_S
from dgan_tf.variants import VARIANTS

DEFAULT_DATASET, DEFAULT_VARIANT = "synthetic", "dsc"
# Flags that map one to one onto RunConfig fields. Every default is None: a flag counts as given only
# when the user typed it, so that resuming with no flag never conflicts with the saved config.
CONFIG_FLAGS = ("dataset", "variant", "image_size", "iterations", "batch_size", "data_root", "seed",
                "checkpoint_every", "sample_every", "features", "width", "norm", "warp_sampling", "precision",
                "learning_rate", "heatmaps", "warp_gradient", "part_max", "vgg_mean", "loss_weights")


def loss_weight_arg(text):
    """NAME=WEIGHT -> (name, weight); the name is checked against the loss term registry when the GAN is built."""
    name, sep, value = text.partition("=")
    try:
        weight = float(value)
    except ValueError:
        weight = None
    if not sep or not name or weight is None:
        raise argparse.ArgumentTypeError(f"expected NAME=WEIGHT (e.g. g_reconstruction=100), received {text!r}")
    return name, weight


def parse_args(argv):
    p = program_parser(__doc__)
    p.add_argument("--dataset", choices=tuple(DATASETS), help=f"default {DEFAULT_DATASET}")
    p.add_argument("--variant", choices=tuple(VARIANTS), help=f"default {DEFAULT_VARIANT}")
    p.add_argument("--image-size", type=image_size_arg, help="HxW; synthetic: 128x64 (default) or 256x256")
    p.add_argument("--iterations", type=int, help="total iterations (default: the dataset's schedule)")
    p.add_argument("--batch-size", type=int, help="default 4 (2 for fashion full)")
    p.add_argument("--data-root", help="folder holding the datasets (default: data)")
    add_run_argument(p, "--output-dir", "the run folder: created, or resumed when it holds a run "
                                        "(default runs/<dataset>-<variant>)", required=False)
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--features", choices=FEATURES,
                   help="feature space of the reconstruction loss; 'pixels' needs no VGG19 weights")
    p.add_argument("--vgg-weights", help="path of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    p.add_argument("--offline", action="store_true",
                   help="never download pretrained weights (also: DGAN_OFFLINE=1); a missing file is an error")
    p.add_argument("--width", type=float, help="channel-width multiplier (1.0 = the paper's networks)")
    p.add_argument("--norm", choices=NORMS, help="scalar (the original's) or per-channel instance")
    p.add_argument("--warp-sampling", choices=WARP_SAMPLINGS)
    p.add_argument("--heatmaps", choices=HEATMAPS,
                   help="pose maps: the original's staircase (Python 2 integer division, default) or a smooth Gaussian")
    p.add_argument("--warp-gradient", choices=WARP_GRADIENTS,
                   help="gradient through the part warps: the original's inverse warp (TF 1.x, default) or exact")
    p.add_argument("--part-max", choices=PART_MAXES,
                   help="gradient of a tie in the max over the parts: split among the tied parts (the original's "
                        "reduce_max, default) or all to the first")
    p.add_argument("--vgg-mean", choices=VGG_MEANS,
                   help="VGG19 input: the original's means before the RGB->BGR flip (default) or after it")
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--learning-rate", type=float)
    p.add_argument("--loss-weight", dest="loss_weights", type=loss_weight_arg, action="append", metavar="NAME=W",
                   help="weight of a generator loss term (repeatable; 0 switches a term off): g_adversarial (1), "
                        "g_reconstruction (the variant's lambda), or a term added to dgan_tf.loss_terms")
    xla = p.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the step (GPU default)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="plain tf.function (CPU default)")
    p.add_argument("--no-progress", action="store_true")
    jax_job = p.add_argument_group("a multi-process JAX job (TensorFlow's workers read TF_CONFIG)")
    jax_job.add_argument("--coordinator", metavar="HOST:PORT",
                         help="process 0's address (default: $JAX_COORDINATOR_ADDRESS; unset: one process)")
    jax_job.add_argument("--num-processes", type=positive_int, help="default: detected by JAX (Slurm, Open MPI)")
    jax_job.add_argument("--process-id", type=int, help="0 .. N-1, 0 the chief (default: detected by JAX)")
    p.add_argument("--join-timeout", type=float, default=DEFAULT_JOIN_TIMEOUT_S, metavar="SECONDS",
                   help="a worker whose peers have not all started by then stops with exit code 138 (0: wait forever)")
    return p.parse_args(argv)


def run_config(args, run):
    """The run's config: the saved one (with the typed resumable flags) when `run` holds one, else a new one."""
    from dgan_tf.config import build_run_config, resume_config

    explicit = {name: getattr(args, name) for name in CONFIG_FLAGS if getattr(args, name) is not None}
    if "loss_weights" in explicit:
        explicit["loss_weights"] = dict(explicit["loss_weights"])
    if run.has_config():
        print(f"Resuming the run in {run.folder}", flush=True)
        return resume_config(run.load_config(), explicit)
    if run.checkpoint_files() or run.has_generator():
        print(f"note: {run.config_path} is missing, though {run.folder} holds a run's files: its configuration is built "
              "from the flags given, which must be those that started the run", file=sys.stderr, flush=True)
    dataset = explicit.pop("dataset", DEFAULT_DATASET)
    variant = explicit.pop("variant", DEFAULT_VARIANT)
    return build_run_config(dataset, variant, image_size=explicit.pop("image_size", None), **explicit)


def main(argv=None):
    from dgan_tf.training.cluster import leave_cluster
    from dgan_tf.training.trainer import TrainingDiverged, TrainingInterrupted, WorkerLost

    args = parse_args(argv)
    try:
        code = run_reporting_errors(run, args, exit_codes=((TrainingDiverged, 3), (WorkerLost, WorkerLost.exit_code)),
                                    interrupted=INTERRUPTED)
    except TrainingInterrupted as error:  # a checkpoint of the current iteration was saved
        print(f"stopped: {error}", file=sys.stderr)
        code = error.exit_code
    return leave_cluster(code)


INTERRUPTED = ("stopped: interrupted before a checkpoint could be saved; run the same command again to resume from "
               "the last complete checkpoint")


def run(args):
    from dgan_tf import weights
    from dgan_tf.run import Run

    if args.offline:
        os.environ[weights.OFFLINE_ENV] = "1"  # read wherever a weight file is resolved (VGG19 here)
    import keras

    from dgan_tf.training.cluster import join_cluster

    run_folder = Run(Path(args.run or f"runs/{args.dataset or DEFAULT_DATASET}-{args.variant or DEFAULT_VARIANT}"))
    cluster = join_cluster(keras.backend.backend(), args.coordinator, args.num_processes, args.process_id,
                           args.join_timeout)
    run_folder.check_outputs()
    with run_folder.lock() if cluster.is_chief else contextlib.nullcontext() as lock:  # one lock per job: the chief's
        if lock is not None and lock.replaced:
            print(f"note: {lock.replaced}", file=sys.stderr, flush=True)
        return train(args, run_folder, lock, cluster)


def train(args, run_folder, lock, cluster):
    """Build the run's trainer (resumed) and train it, holding the run's lock (the chief of a job)."""
    from dgan_tf.build import build_trainer

    config = run_config(args, run_folder)
    trainer = build_trainer(config, run_folder, xla=args.xla, vgg_weights=args.vgg_weights,
                            progress=not args.no_progress, cluster=cluster)
    start = trainer.step
    batch = f"batch {config.batch_size}" + (f" per replica, {trainer.global_batch} in all"
                                             if trainer.global_batch != config.batch_size else "")
    job = f", {cluster.describe()}" if cluster.distributed else ""
    print(f"dataset {config.dataset} {config.image_size[0]}x{config.image_size[1]}, variant {config.variant}, "
          f"{batch}, iterations {start} -> {config.iterations}, "
          f"backend {trainer.backend}, xla {trainer.xla}{job}; outputs in {run_folder.folder}", flush=True)
    losses = trainer.train(on_step=None if lock is None else lambda _: lock.refresh())
    if start >= config.iterations:
        print(f"nothing to train: the run was already at iteration {start} of {config.iterations}; its samples and "
              "generator were written again from its last checkpoint. Give --iterations above "
              f"{start} to train further")
    else:
        print("done: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    if cluster.is_chief:  # the other workers write nothing
        print(f"samples: {run_folder.latest_sample_path}; generator: {run_folder.generator_path}")
    return 0
