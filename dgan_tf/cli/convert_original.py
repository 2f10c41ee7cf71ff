"""Convert the authors' released generator (and discriminator) weights into a dgan_tf run folder.

Examples:
  python scripts/convert_original.py --generator-weights market/full/generator.h5 --dataset market --variant full \\
      --run runs/paper-market-full
  python scripts/convert_original.py --generator-weights G.h5 --discriminator-weights D.h5 --dataset fashion \\
      --variant dsc --run runs/paper-fashion-dsc
  python scripts/test.py --run runs/paper-market-full             # the paper's model on the test pairs
  python scripts/train.py --run runs/paper-fashion-dsc --iterations 100000   # fine-tune (needs the discriminator)

The files are the Keras 2.0.8 HDF5 files of pose-gan's README ("Testing: 0. Download checkpoints"): weights
(`save_weights`) or whole models (`model.save`). A file of another dataset size or variant is refused, saying
what it looks like. RUN gets config.json (the original's settings for the dataset and variant) and
generator.keras; with --discriminator-weights also checkpoints/ckpt-<step>.npz (G, D, fresh Adam state), so that
train.py resumes it. baseline takes the one-encoder generator; dsc, percloss and full the two-stream one (the
variant names the loss a fine-tuning run trains with).
"""

import argparse
import sys

from dgan_tf.cli.arguments import add_run_argument, require_run, run_reporting_errors
from dgan_tf.inference.original_run import RELEASED_UPDATES
from dgan_tf.models.original_weights import ORIGINAL_DATASETS
from dgan_tf.variants import VARIANTS


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--generator-weights", required=True, metavar="G.h5", help="the original's generator file")
    p.add_argument("--discriminator-weights", metavar="D.h5",
                   help="the original's discriminator file: adds a checkpoint that train.py resumes")
    p.add_argument("--dataset", required=True, choices=ORIGINAL_DATASETS, help="what the file was trained on")
    p.add_argument("--variant", required=True, choices=tuple(VARIANTS), help="what the file was trained as")
    add_run_argument(p, "--output-dir", "the new run folder (must be empty or absent)")
    p.add_argument("--step", type=int, default=RELEASED_UPDATES,
                   help=f"the checkpoint's iteration (default {RELEASED_UPDATES:,}, the released models' updates)")
    p.add_argument("--data-root", default="data", help="where test.py and train.py will look for the dataset")
    args = p.parse_args(argv)
    require_run(p, args)
    return args


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    from dgan_tf.inference.original_run import convert_original
    from dgan_tf.run import Run

    done = convert_original(args.generator_weights, args.dataset, args.variant, Run(args.run),
                            args.discriminator_weights, step=args.step, data_root=args.data_root)
    size = "x".join(str(v) for v in done.config.image_size)
    print(f"Converted {done.generator_file}\ninto {done.run.folder} ({args.dataset} {size}, {args.variant}): "
          f"config.json, generator.keras" + (f", {done.checkpoint.relative_to(done.run.folder)} (iteration "
                                             f"{done.step:,})" if done.checkpoint else ""))
    print(f"next: python scripts/test.py --run {done.run.folder}"
          + (f"; fine-tune: python scripts/train.py --run {done.run.folder} --iterations N" if done.checkpoint else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
