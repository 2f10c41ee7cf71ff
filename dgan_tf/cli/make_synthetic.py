"""Generate the synthetic articulated-figure dataset in the original's layout.

Examples:
    python scripts/make_synthetic.py --output-dir data/synthetic                      # 2,000 images, 128x64
    python scripts/make_synthetic.py --output-dir data/synthetic-256 --image-size 256x256 --identities 100
    python scripts/make_synthetic.py --output-dir data/synthetic --if-missing         # keep a complete one

Writes OUT/synthetic-dataset/{train,test}/<id>_<k>.jpg, OUT/synthetic-annotation-{train,test}.csv,
OUT/synthetic-pairs-{train,test}.csv and, last, OUT/synthetic-complete.json; prints the summary.
"""

import argparse
import json
import sys
from pathlib import Path


from dgan_tf.cli.arguments import image_size_arg, run_reporting_errors
from dgan_tf.data import synthetic
from dgan_tf.outputs import check_output_folder


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", "--out", required=True, type=Path, help="output folder (created if needed)")
    parser.add_argument("--image-size", "--size", type=image_size_arg, default=synthetic.DEFAULT_IMAGE_SIZE,
                        help="image size HEIGHTxWIDTH (default 128x64; 256x256 for DeepFashion-like data)")
    parser.add_argument("--identities", type=int, default=synthetic.DEFAULT_IDENTITIES,
                        help=f"number of people (default {synthetic.DEFAULT_IDENTITIES})")
    parser.add_argument("--images-per-identity", type=int, default=synthetic.DEFAULT_IMAGES_PER_IDENTITY,
                        help=f"images of each person (default {synthetic.DEFAULT_IMAGES_PER_IDENTITY})")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    parser.add_argument("--test-fraction", type=float, default=synthetic.DEFAULT_TEST_FRACTION,
                        help=f"fraction of identities held out for test (default {synthetic.DEFAULT_TEST_FRACTION})")
    parser.add_argument("--if-missing", action="store_true",
                        help="do nothing when OUT already holds a complete dataset with these parameters")
    return parser


def main(argv=None):
    return run_reporting_errors(run, build_parser().parse_args(argv))


def run(args):
    check_output_folder(args.output_dir, "--output-dir")
    kwargs = dict(identities=args.identities, images_per_identity=args.images_per_identity, seed=args.seed,
                  test_fraction=args.test_fraction)
    if args.if_missing:
        summary = synthetic.ensure_synthetic_dataset(args.output_dir, args.image_size, **kwargs)
    else:
        summary = synthetic.make_synthetic_dataset(args.output_dir, args.image_size, **kwargs)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
