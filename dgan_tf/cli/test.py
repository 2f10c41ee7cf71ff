"""Generate every test pair with a trained generator and report the paper's metrics, or score any folder.

Examples:
  python scripts/test.py --checkpoint runs/synthetic-dsc               # the run folder (config.json inside)
  python scripts/test.py --checkpoint runs/market-full --real-data --inception-weights ~/inception_v3.h5
  python scripts/test.py --dataset fashion --score-dir outputs_of_another_method/
Outputs in --output-dir: images/<from>_<to>.png (source | target | generated), generated/<from>_<to>.png,
metrics.json and metrics.md (laid out like the paper's Table 1).
Exit codes: 0 done; 1 SSIM is not finite; 2 an error in the input (a flag, the run folder, generator.keras, a
data or image file), with a message naming it.
"""

import argparse
import sys
from pathlib import Path

from dgan_tf.cli.arguments import run_reporting_errors
from dgan_tf.data.datasets import DATASETS
from dgan_tf.evaluation.inception import DEFAULT_KIND, INCEPTION_KINDS



def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", help="a run folder written by train.py, or its generator.keras file")
    p.add_argument("--score-dir", help="score this folder of <from>_<to>.png/.jpg images instead of generating")
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
    p.add_argument("--fid-reference", choices=("train", "test"), default="train",
                   help="real images FID compares against: the training set (later papers) or the test targets")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def load_scorer(args):
    """The Inception scorer and a report note, or None with the reason (the other metrics still run)."""
    if args.no_inception:
        return None, "IS, mask-IS and FID skipped (--no-inception)."
    from dgan_tf.evaluation.inception import WeightsNotFoundError, make_inception_scorer

    path = args.inception_graph if args.inception == "2015" else args.inception_weights
    try:
        scorer = make_inception_scorer(kind=args.inception, weights_path=path, offline=args.offline,
                                       progress=not args.no_progress)
    except WeightsNotFoundError as error:
        print(f"warning: {error}\nIS, mask-IS and FID are skipped; the other metrics still run.", file=sys.stderr)
        return None, f"IS, mask-IS and FID skipped: the {args.inception} Inception network's weights were not found."
    return scorer, f"IS/FID network: {scorer.label}."


def load_detector(args):
    """The SSD300 person detector for DS and a report note, or None with the reason."""
    if args.no_ds:
        return None, "DS skipped (--no-ds)."
    from dgan_tf.evaluation.ssd import SSDScorer, resolve_weights_path
    from dgan_tf.weights import WeightsNotFoundError

    try:
        detector = SSDScorer(weights_path=resolve_weights_path(args.ssd_weights), progress=not args.no_progress)
    except WeightsNotFoundError as error:
        print(f"warning: {error}\nDS is skipped; the other metrics still run.", file=sys.stderr)
        return None, "DS skipped: SSD300 weights not found."
    return detector, f"DS detector: {detector.description}."


def load_generator(model_path, config, run_dir):
    """The generator in `model_path`, checked against the run's config.json; a ValueError naming the file otherwise."""
    import zipfile

    import keras

    def unreadable(reason):
        return ValueError(f"{model_path} is not a readable Keras model file ({reason}); write it again from the "
                          "run's checkpoints: python scripts/train.py --output-dir RUN resumes the run and rewrites it")

    try:
        with zipfile.ZipFile(model_path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise unreadable(f"not a complete zip archive, {model_path.stat().st_size} bytes: truncated or damaged; "
                         f"{error}") from None
    if damaged is not None:
        raise unreadable(f"its entry {damaged} is damaged")
    try:
        generator = keras.saving.load_model(model_path)
    except Exception as error:  # Keras raises KeyError, TypeError, ValueError... for malformed files
        reason = str(error).splitlines()[0] if str(error) else ""
        raise unreadable(f"{type(error).__name__}: {reason[:300]}".rstrip(": ")) from None
    inputs = getattr(generator, "inputs", None) or []
    image_shape = tuple(inputs[0].shape[1:3]) if inputs else None
    if image_shape != tuple(config.image_size):
        received = "x".join(str(v) for v in image_shape) if image_shape else "unknown"
        raise ValueError(f"{model_path} takes images of {received}, but the run's "
                         f"{run_dir / 'config.json'} says {config.image_size[0]}x{config.image_size[1]}: the model "
                         "file belongs to another run; give the matching run folder")
    return generator


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    import numpy as np

    from dgan_tf.evaluation import protocol as evaluation
    from dgan_tf.data.datasets import get_dataset

    progress = not args.no_progress
    if bool(args.checkpoint) == bool(args.score_dir):
        raise ValueError("give exactly one of --checkpoint (generate and score) or --score-dir (score a folder)")
    if args.checkpoint:
        import keras

        from dgan_tf.config import load_config

        run_dir = Path(args.checkpoint)
        model_path = run_dir if run_dir.suffix == ".keras" else run_dir / "generator.keras"
        run_dir = model_path.parent
        if not model_path.exists():
            raise FileNotFoundError(f"{model_path} not found: train first (python scripts/train.py) or give a "
                                    "run folder that holds generator.keras")
        config = load_config(run_dir)
        if args.dataset and args.dataset != config.dataset:
            raise ValueError(f"--dataset {args.dataset} differs from the run's dataset {config.dataset}")
        data = get_dataset(config.dataset, data_root=args.data_root or config.data_root, image_size=config.image_size)
        data.check_present("test")
        out_dir = Path(args.output_dir or run_dir / "test")
        generator = load_generator(model_path, config, run_dir)
        pairs, generated, targets, keypoints = evaluation.generate_test_pairs(
            generator, data, out_dir, batch_size=args.batch_size, progress=progress)
        label, title, skipped = f"dgan_tf {config.variant}", f"{config.dataset} test, {len(pairs)} pairs", 0
    else:
        if not args.dataset:
            raise ValueError("--score-dir needs --dataset")
        data = get_dataset(args.dataset, data_root=args.data_root or "data", image_size=args.image_size)
        data.check_present("test")
        score_dir = Path(args.score_dir)
        out_dir = Path(args.output_dir or score_dir.parent / f"{score_dir.name}-scores")
        pairs, generated, targets, keypoints, skipped = evaluation.load_scored_dir(score_dir, data, progress=progress)
        label, title = score_dir.name, f"{args.dataset} test, {len(pairs)} pairs from {score_dir}"

    scorer, note = load_scorer(args)
    detector, detector_note = load_detector(args)
    reference = None if scorer is None else evaluation.fid_reference_features(scorer, data, args.fid_reference, targets)
    pckh_dir = out_dir / "pckh" if args.pckh else None
    rows = {label: evaluation.score(generated, targets, keypoints, scorer, reference, progress, detector, pckh_dir)}
    if args.real_data:
        rows["Real data"] = evaluation.score(targets, targets, keypoints, scorer, reference, progress, detector,
                                             pckh_dir and pckh_dir / "real")
    notes = [n for n in (note, detector_note, f"{skipped} image files did not match a test pair." if skipped else None)
             if n]
    if scorer is not None:
        notes.append(f"FID reference: the {args.fid_reference} set.")
    if args.pckh:
        from dgan_tf.evaluation.pckh import ESTIMATOR_LABEL

        notes.append(f"PCKh keypoints: {ESTIMATOR_LABEL}.")
    print(evaluation.write_report(out_dir, rows, title, notes))
    print(f"written: {out_dir / 'metrics.json'}, {out_dir / 'metrics.md'}")
    return 0 if np.isfinite(rows[label]["ssim"]) else 1


if __name__ == "__main__":
    sys.exit(main())
