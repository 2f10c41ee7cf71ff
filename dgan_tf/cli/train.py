"""Train a Deformable GAN variant. Running the same command again resumes from the last checkpoint.

Examples:
  python scripts/train.py                                   # synthetic data (created on first use), dsc
  python scripts/train.py --dataset market --variant full
  python scripts/train.py --dataset fashion --variant full --vgg-weights ~/vgg19_notop.h5
  KERAS_BACKEND=jax python scripts/train.py --iterations 100
"""

import argparse
import sys
from pathlib import Path



def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "market", "fashion"))
    p.add_argument("--variant", default="dsc", choices=("baseline", "dsc", "percloss", "full"))
    p.add_argument("--image-size", help="synthetic only: 128x64 (default) or 256x256")
    p.add_argument("--iterations", type=int, help="total iterations (default: 90000; synthetic 300)")
    p.add_argument("--batch-size", type=int, help="default 4 (2 for fashion full)")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (default: data)")
    p.add_argument("--output-dir", help="default: runs/<dataset>-<variant>")
    p.add_argument("--seed", type=int)
    p.add_argument("--checkpoint-every", type=int)
    p.add_argument("--sample-every", type=int)
    p.add_argument("--nn-features", dest="features", choices=("pixels", "vgg19_block2_conv1", "vgg19_block1_conv2"),
                   help="feature space of the reconstruction loss; 'pixels' needs no VGG19 weights")
    p.add_argument("--vgg-weights", help="path of vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5")
    p.add_argument("--width", type=float, help="channel-width multiplier (default 1.0, the paper's networks)")
    p.add_argument("--norm", choices=("scalar", "instance"), help="scalar (the original's) or per-channel instance")
    p.add_argument("--warp-sampling", choices=("nearest", "bilinear"))
    p.add_argument("--precision", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    p.add_argument("--learning-rate", type=float)
    xla = p.add_mutually_exclusive_group()
    xla.add_argument("--xla", dest="xla", action="store_true", default=None, help="XLA-compile the step (GPU default)")
    xla.add_argument("--no-xla", dest="xla", action="store_false", help="plain tf.function (CPU default)")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


OVERRIDES = ("iterations", "batch_size", "data_root", "seed", "checkpoint_every", "sample_every", "features",
             "width", "norm", "warp_sampling", "precision", "learning_rate")


def main(argv=None):
    args = parse_args(argv)
    from dgan_tf.config import build_run_config, load_config, reconcile_with_saved, CONFIG_FILE
    from dgan_tf.training.trainer import Trainer, TrainingDiverged

    output_dir = Path(args.output_dir or f"runs/{args.dataset}-{args.variant}")
    overrides = {k: getattr(args, k) for k in OVERRIDES}
    try:
        config = build_run_config(args.dataset, args.variant, image_size=args.image_size, **overrides)
        if (output_dir / CONFIG_FILE).exists():
            explicit = [k for k, v in overrides.items() if v is not None] + ["dataset", "variant", "image_size"]
            config = reconcile_with_saved(load_config(output_dir), config, explicit)
            print(f"Resuming the run in {output_dir}", flush=True)
        trainer = Trainer(config, output_dir, xla=args.xla, vgg_weights=args.vgg_weights,
                          progress=not args.no_progress).setup()
        print(f"dataset {config.dataset} {config.image_size[0]}x{config.image_size[1]}, variant {config.variant}, "
              f"batch {config.batch_size}, iterations {trainer.step} -> {config.iterations}, "
              f"backend {trainer.backend}, xla {trainer.xla}; outputs in {output_dir}", flush=True)
        losses = trainer.run()
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("done: " + ", ".join(f"{k} {v:.4g}" for k, v in losses.items()))
    print(f"samples: {output_dir / 'samples' / 'latest.png'}; generator: {output_dir / 'generator.keras'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
