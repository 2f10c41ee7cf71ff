"""Build a pair CSV from an annotation CSV, as the original's create_pairs_dataset.py did.

Examples:
  python scripts/make_pairs.py data/market-annotation-train.csv --output data/market-pairs-train.csv --dataset market
  python scripts/make_pairs.py data/market-annotation-test.csv --output data/market-pairs-test.csv \\
      --dataset market --sample 12000 --seed 0
"""

import sys
from pathlib import Path


from dgan_tf.cli.arguments import add_force_argument, image_size_arg, positive_int, program_parser, run_reporting_errors
from dgan_tf.data.annotations import read_annotations, write_pairs
from dgan_tf.data.datasets import DATASETS, get_dataset
from dgan_tf.data.pairs import make_pairs, valid_image_mask
from dgan_tf.outputs import check_output_file


def parse_args(argv):
    parser = program_parser(__doc__)
    parser.add_argument("annotations", type=Path, help="annotation CSV (name:keypoints_y:keypoints_x)")
    parser.add_argument("--output", "--out", type=Path, required=True, help="pair CSV to write (from,to)")
    add_force_argument(parser, "--output")
    parser.add_argument("--dataset", required=True, choices=tuple(DATASETS), help="decides the id rule")
    parser.add_argument("--sample", type=positive_int, default=None,
                        help="keep a random sample of this many pairs (the original's test split: 12000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0, as the original)")
    parser.add_argument("--image-size", type=image_size_arg, default=None,
                        help="HxW frame to check coordinates against (default: market 128x64, fashion 256x256; "
                             "synthetic: no check, as it comes in two sizes)")
    return parser.parse_args(argv)


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    check_output_file(args.output, "--output", inputs=[("the input annotation file", args.annotations)],
                      force=args.force)
    image_size = args.image_size
    if image_size is None and len(DATASETS[args.dataset]) == 1:
        image_size = get_dataset(args.dataset).image_size
    table = read_annotations(args.annotations, image_size=image_size)
    pairs = make_pairs(table, args.dataset, sample=args.sample, seed=args.seed)
    write_pairs(args.output, pairs)
    valid = int(valid_image_mask(table.names, table.keypoints_yx, args.dataset).sum())
    print(f"Wrote {len(pairs)} pairs ({valid} valid images of {len(table)}) to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
