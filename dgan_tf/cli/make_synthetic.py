"""Generate the synthetic articulated-figure dataset in the original's layout.

Examples:
    python scripts/make_synthetic.py                                  # 2,000 images, 128x64, in data/synthetic-128x64
    python scripts/make_synthetic.py --image-size 256x256 --identities 100      # in data/synthetic-256x256
    python scripts/make_synthetic.py --if-missing                     # keep a complete one
    python scripts/make_synthetic.py --output-dir /tmp/figures --identities 10  # anywhere else

Writes OUT/synthetic-dataset/{train,test}/<id>_<k>.jpg, OUT/synthetic-annotation-{train,test}.csv,
OUT/synthetic-pairs-{train,test}.csv and, last, OUT/synthetic-complete.json; prints the summary. OUT defaults to
where train.py and test.py read the synthetic dataset of that size (data/synthetic-HxW, the dataset registry's
folder; --data-root DIR for DIR/synthetic-HxW); they also create it there on first use.
"""

import json
import sys
from pathlib import Path


from dgan_tf.cli.arguments import image_size_arg, program_parser, run_reporting_errors
from dgan_tf.data import synthetic
from dgan_tf.outputs import check_output_folder


def build_parser():
    parser = program_parser(__doc__)
    parser.add_argument("--output-dir", "--out", type=Path,
                        help="output folder (created if needed); default: the registry's, DATA_ROOT/synthetic-HxW")
    parser.add_argument("--data-root", default="data", help="folder holding the datasets (default: data)")
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
    if args.output_dir is None:
        args.output_dir = default_output_dir(args.data_root, args.image_size)
    check_output_folder(args.output_dir, "--output-dir")
    kwargs = dict(identities=args.identities, images_per_identity=args.images_per_identity, seed=args.seed,
                  test_fraction=args.test_fraction)
    if args.if_missing:
        summary = synthetic.ensure_synthetic_dataset(args.output_dir, args.image_size, **kwargs)
    else:
        summary = synthetic.make_synthetic_dataset(args.output_dir, args.image_size, **kwargs)
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


def default_output_dir(data_root, image_size):
    """Where the dataset registry reads the synthetic dataset of `image_size` under `data_root`."""
    from dgan_tf.data.datasets import DATASETS, get_dataset

    if not any(choice.image_size == image_size for choice in DATASETS["synthetic"]):
        sizes = ", ".join(str(choice.image_size) for choice in DATASETS["synthetic"])
        raise ValueError(f"train.py and test.py read the synthetic dataset at {sizes} only: give --output-dir for a "
                         f"{image_size} one")
    return get_dataset("synthetic", data_root=data_root, image_size=image_size).data_dir


if __name__ == "__main__":
    sys.exit(main())
