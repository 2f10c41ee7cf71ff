"""Lay out downloaded Market-1501 or DeepFashion images as the training code expects (no resizing).

Examples:
  python scripts/prepare_dataset.py market --source /path/to/Market-1501-v15.09.15 [--data-root data]
  python scripts/prepare_dataset.py fashion --source /path/to/In-shop/img --annotations-dir /path/to/csvs \\
      [--naming auto|defgan|patn] [--mode copy|hardlink|symlink]
"""

import sys
from pathlib import Path


from dgan_tf.cli.arguments import program_parser, run_reporting_errors
from dgan_tf.data.datasets import get_dataset
from dgan_tf.data.prepare import prepare_fashion, prepare_market
from dgan_tf.options import LINK_MODES, NAMINGS, PREPARED_DATASETS
from dgan_tf.outputs import check_output_folder


def parse_args(argv):
    parser = program_parser(__doc__)
    parser.add_argument("dataset", choices=PREPARED_DATASETS)
    parser.add_argument("--source", type=Path, required=True,
                        help="market: the Market-1501-v15.09.15 folder; fashion: the In-shop img/ folder")
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--mode", choices=LINK_MODES, default="copy", help="copy (default), hardlink or symlink")
    parser.add_argument("--annotations-dir", type=Path, default=None,
                        help="fashion: folder with fasion-annotation-{train,test}.csv, copied next to the data "
                             "(default: look in --data-root, then the repository's annotations/ folder)")
    parser.add_argument("--naming", choices=("auto",) + NAMINGS, default="auto",
                        help="fashion: file naming of the CSVs, Def-GAN (fasion...) or PATN (fashion...); "
                             "auto reads it from the CSVs")
    return parser.parse_args(argv)


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    data = get_dataset(args.dataset, args.data_root)
    images = f"{data.file_prefixes[0]}-dataset"
    check_output_folder(data.data_dir, "--data-root", folders=(images, f"{images}/train", f"{images}/test"))
    if args.dataset == "market":
        summary = prepare_market(args.source, args.data_root, args.mode)
    else:
        summary = prepare_fashion(args.source, args.annotations_dir, args.data_root, args.mode, args.naming)
    print(f"Placed {summary.placed['train']} train and {summary.placed['test']} test images under {args.data_root} "
          f"({summary.already_present} already present).")
    for label, items in (("in no annotation file (skipped)", summary.unlisted),
                         ("not in the DeepFashion layout (skipped)", summary.unrecognised),
                         ("annotated but without a source image", summary.missing)):
        if items:
            print(f"Warning: {len(items)} images {label}, e.g. {items[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
