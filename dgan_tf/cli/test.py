"""Generate every test pair with a trained generator and report the paper's metrics, or score any folder.

Examples:
  python scripts/test.py --run runs/synthetic-dsc                      # the run folder (config.json inside)
  python scripts/test.py --run runs/market-full --real-data --inception-graph ~/classify_image_graph_def.pb
  python scripts/test.py --dataset fashion --score-dir outputs_of_another_method/
  python scripts/test.py --run runs/market-full --shard 2/4       # on 4 machines, K = 1..4: one block each
  python scripts/test.py --merge runs/market-full/test/shard-*-of-4   # then the metrics of all of them
Outputs in --output-dir: images/<from>_<to>.png (source | target | generated), generated/<from>_<to>.png,
metrics.json and metrics.md (laid out like the paper's Table 1), replaced on each run; the folder is checked first.
--score-dir scores the pairs that have an image, naming the missing ones; below 90% of the pairs it needs
--allow-missing. --shard K/N saves, instead of metrics, what they are computed from (OUT/shard.npz, OUT
default <run>/test/shard-K-of-N); --merge DIR... writes the metrics of all N shards (default: beside the shard
folders), equal to a single run's with the same --batch-size.
Exit codes: 0 done; 1 SSIM is not finite; 2 an error in the input (a flag, the run folder, generator.keras, a
data or image file), with a message naming it.
"""

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from dgan_tf.cli.arguments import add_run_argument, program_parser, run_reporting_errors
from dgan_tf.data.datasets import DATASETS
from dgan_tf.evaluation.inception import DEFAULT_KIND
from dgan_tf.options import FID_REFERENCES, INCEPTION_KINDS


def parse_args(argv):
    p = program_parser(__doc__)
    add_run_argument(p, "--checkpoint", "a run folder written by train.py, or its generator.keras file",
                     required=False)
    p.add_argument("--score-dir", help="score this folder of <from>_<to>.png/.jpg images instead of generating")
    p.add_argument("--allow-missing", action="store_true",
                   help="with --score-dir: score the pairs found even when more than a tenth have no image")
    p.add_argument("--dataset", choices=tuple(DATASETS),
                   help="default: the run's dataset (required with --score-dir)")
    p.add_argument("--image-size", help="synthetic only, with --score-dir: 128x64 or 256x256")
    p.add_argument("--data-root", help="default: the run's data root, else data")
    p.add_argument("--output-dir", help="default: <run>/test, or <score-dir>/../<name>-scores")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--real-data", action="store_true", help="add the paper's Real-Data row")
    p.add_argument("--inception", choices=INCEPTION_KINDS, default=DEFAULT_KIND,
                   help="IS/FID network: the 2015 graph (comparable with published values, default) or Keras's "
                        "InceptionV3 (not comparable)")
    p.add_argument("--inception-graph", help="classify_image_graph_def.pb (from inception-2015-12-05.tgz)")
    p.add_argument("--inception-weights", help="inception_v3_weights_tf_dim_ordering_tf_kernels.h5 (--inception keras)")
    p.add_argument("--no-inception", action="store_true", help="skip IS, mask-IS and FID")
    p.add_argument("--ssd-weights", help="SSD300 VOC0712 weights for DS (.caffemodel or ssd_keras weights_SSD300.hdf5)")
    p.add_argument("--no-ds", action="store_true", help="skip DS (the SSD300 person-detection score)")
    p.add_argument("--pckh", action="store_true",
                   help="add PCKh: MediaPipe BlazePose (in .venv-pose, built on first use) on the generated images")
    p.add_argument("--offline", action="store_true",
                   help="never download pretrained weights (also: DGAN_OFFLINE=1); missing ones skip their columns")
    p.add_argument("--fid-reference", choices=FID_REFERENCES, default="train",
                   help="real images FID compares against: the training set (later papers) or the test targets")
    p.add_argument("--shard", type=shard_arg, metavar="K/N",
                   help="score block K (from 1) of N of the pairs and save what the metrics need; see --merge")
    p.add_argument("--merge", nargs="+", metavar="DIR", help="the metrics of the N shards saved in these folders")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def shard_arg(text):
    from dgan_tf.evaluation.shards import Shard

    try:
        return Shard.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def load_scorer(args):
    """The Inception scorer and a report note naming it, or None and a note saying why there is none."""
    if args.no_inception:
        return None, "IS/FID network: none (IS, mask-IS and FID skipped: --no-inception)."
    from dgan_tf.evaluation.inception import WeightsNotFoundError, make_inception_scorer

    flag = "--inception-graph" if args.inception == "2015" else "--inception-weights"
    path = args.inception_graph if args.inception == "2015" else args.inception_weights
    try:  # batches of --batch-size, as generation: a shard's images then meet the networks in a single run's batches
        scorer = make_inception_scorer(kind=args.inception, weights_path=path, offline=args.offline,
                                       batch_size=args.batch_size, progress=not args.no_progress)
    except WeightsNotFoundError as error:
        missing_weights(args, error, f"IS, mask-IS and FID skipped: the {args.inception} Inception network's weights "
                                     "were not found", path, flag, "--no-inception")
        return None, f"IS/FID network: none (the {args.inception} Inception network's weights were not found)."
    return scorer, f"IS/FID network: {scorer.label}."


def load_detector(args):
    """The SSD300 person detector for DS and a report note naming it, or None and a note saying why there is none."""
    if args.no_ds:
        return None, "DS detector: none (DS skipped: --no-ds)."
    from dgan_tf.evaluation.ssd import SSDScorer, resolve_weights_path
    from dgan_tf.weights import WeightsNotFoundError

    try:
        detector = SSDScorer(weights_path=resolve_weights_path(args.ssd_weights), batch_size=args.batch_size,
                             progress=not args.no_progress)
    except WeightsNotFoundError as error:
        missing_weights(args, error, "DS skipped: no SSD300 weights (never downloaded)", args.ssd_weights,
                        "--ssd-weights", "--no-ds")
        return None, "DS detector: none (SSD300 weights not found)."
    return detector, f"DS detector: {detector.description}."


def missing_weights(args, error, skipped, path, flag, skip_flag):
    """Optional weights not found: one line naming the flags, unless the user gave the path (or --verbose), who
    gets the whole message (where to get the file)."""
    if path or args.verbose:
        print(f"warning: {error}\n{skipped}; the other metrics still run.", file=sys.stderr)
    else:
        print(f"note: {skipped}; give them with {flag} PATH (--verbose says where to get them), or {skip_flag}",
              file=sys.stderr)


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    if args.merge:
        if args.run or args.score_dir or args.shard:
            raise ValueError("--merge takes the shards' folders alone (no --run, --score-dir or --shard)")
        return merge(args)
    if bool(args.run) == bool(args.score_dir):
        raise ValueError("give exactly one of --run (generate and score) or --score-dir (score a folder)")
    scored = generate_from_run(args) if args.run else read_scored_folder(args)
    return report(args, scored)


@dataclasses.dataclass
class Scored:
    """What the metrics compare: generated and target uint8 images, the target keypoints, labels and where to write."""

    data: Any  # the DatasetConfig (FID's reference set)
    generated: Any  # (N, H, W, 3) uint8
    targets: Any  # (N, H, W, 3) uint8
    keypoints: Any  # (N, 18, 2) target keypoints
    label: str
    title: str
    out_dir: Path
    unmatched: int = 0  # image files of a scored folder that match no pair
    missing: str = ""  # a scored folder's pairs without an image, as a sentence
    pair_names: list = dataclasses.field(default_factory=list)  # `<from>_<to>` of each image
    total: int = 0  # the pairs of the evaluation (a shard holds a block of them)


def generate_from_run(args):
    """Generate every test pair with the run's generator (images written to the output folder)."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import create_on_first_use
    from dgan_tf.evaluation.protocol import check_output_dir, generate_test_pairs, pairs_of
    from dgan_tf.run import Run

    run_folder = Run.open(args.run)
    config = run_folder.load_config()
    if args.dataset and args.dataset != config.dataset:
        raise ValueError(f"--dataset {args.dataset} differs from the run's dataset {config.dataset}")
    data = get_dataset(config.dataset, data_root=args.data_root or config.data_root, image_size=config.image_size)
    out_dir = check_output_dir(args.output_dir or run_folder.test_dir / (args.shard.name if args.shard else ""))
    create_on_first_use(data)  # after the output check: no work before it
    data.check_present("test")
    generator = run_folder.load_model(config)
    pairs, generated, targets, keypoints = generate_test_pairs(generator, data, out_dir, batch_size=args.batch_size,
                                                               progress=not args.no_progress, part=block(args))
    total = len(pairs_of(data)) if args.shard else len(pairs)
    return Scored(data, generated, targets, keypoints, f"dgan_tf {config.variant}",
                  f"{config.dataset} test, {total} pairs", out_dir, pair_names=_names(pairs), total=total)


def block(args):
    """None, or with --shard a function: count -> this shard's slice (whole batches of --batch-size)."""
    return None if args.shard is None else (lambda count: args.shard.rows(count, args.batch_size))


def _names(pairs):
    from dgan_tf.evaluation.protocol import pair_file_name

    return [pair_file_name(a, b, "") for a, b in zip(pairs["from"], pairs["to"])]


def read_scored_folder(args):
    """Images of any method named <from>_<to>.png or .jpg, matched to the test pairs."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import create_on_first_use
    from dgan_tf.evaluation.protocol import check_output_dir, load_scored_dir

    if not args.dataset:
        raise ValueError("--score-dir needs --dataset")
    data = get_dataset(args.dataset, data_root=args.data_root or "data", image_size=args.image_size)
    score_dir = Path(args.score_dir)
    out_dir = check_output_dir(args.output_dir or score_dir.parent / f"{score_dir.name}-scores")  # before any work
    create_on_first_use(data)
    data.check_present("test")
    found = load_scored_dir(score_dir, data, progress=not args.no_progress, allow_missing=args.allow_missing,
                            part=block(args))
    if found.missing:
        print(f"warning: {found.missing_note()}; scoring the {found.found} found", file=sys.stderr)
    return Scored(data, found.generated, found.targets, found.keypoints, score_dir.name,
                  f"{args.dataset} test, {found.found} pairs from {score_dir}", out_dir, found.unmatched,
                  found.missing_note(), _names(found.pairs), found.found)


def report(args, scored):
    """Score (and with --real-data the real images too), write metrics.json and metrics.md; exit 1 if SSIM is NaN."""
    import numpy as np

    from dgan_tf.evaluation.protocol import PCKH_DIR, fid_reference_features, measure, summarize, write_report

    progress = not args.no_progress
    scorer, note = load_scorer(args)
    detector, detector_note = load_detector(args)
    reference = None if scorer is None else fid_reference_features(scorer, scored.data, args.fid_reference,
                                                                    scored.targets, part=block(args))
    pckh_dir = scored.out_dir / PCKH_DIR if args.pckh else None
    measured = {scored.label: measure(scored.generated, scored.targets, scored.keypoints, scorer, progress, detector,
                                      pckh_dir)}
    if args.real_data:
        measured["Real data"] = measure(scored.targets, scored.targets, scored.keypoints, scorer, progress, detector,
                                        pckh_dir and pckh_dir / "real")
    notes = [n for n in (note, detector_note) if n]
    if scored.missing:
        notes.append(f"Not scored: {scored.missing}.")
    if scored.unmatched:
        notes.append(f"{scored.unmatched} image files did not match a test pair.")
    if scorer is not None:
        notes.append(f"FID reference: the {args.fid_reference} set.")
    if args.pckh:
        from dgan_tf.evaluation.pckh import ESTIMATOR_LABEL

        notes.append(f"PCKh keypoints: {ESTIMATOR_LABEL}.")
    if args.shard:
        return save_shard(args, scored, measured, reference, notes)
    rows = {label: summarize(values, reference) for label, values in measured.items()}
    print(write_report(scored.out_dir, rows, scored.title, notes))
    print(f"written: {scored.out_dir / 'metrics.json'}, {scored.out_dir / 'metrics.md'}")
    return 0 if np.isfinite(rows[scored.label]["ssim"]) else 1


def save_shard(args, scored, measured, reference, notes):
    from dgan_tf.evaluation.shards import save_shard as save

    meta = dict(title=scored.title, notes=notes, batch_size=args.batch_size, total=scored.total,
                fid_reference=None if reference is None else args.fid_reference)
    path = save(scored.out_dir, args.shard, meta, measured, reference, scored.pair_names)
    print(f"shard {args.shard.index}/{args.shard.count}: {len(scored.pair_names)} pairs scored; saved {path}. When "
          f"all {args.shard.count} are done: python scripts/test.py --merge FOLDER_1 ... FOLDER_{args.shard.count}")
    return 0


def merge(args):
    """The metrics of the shards in args.merge, written as a single run writes them."""
    import numpy as np

    from dgan_tf.evaluation.shards import merge_report

    out_dir, rows, text = merge_report(args.merge, args.output_dir)
    print(text)
    print(f"written: {out_dir / 'metrics.json'}, {out_dir / 'metrics.md'}")
    return 0 if np.isfinite(next(iter(rows.values()))["ssim"]) else 1


if __name__ == "__main__":
    sys.exit(main())
