"""Annotate your own photos: 18 OpenPose/COCO keypoints per image (one person each) with MediaPipe BlazePose, offline.

Writes the original's annotation CSV (name:keypoints_y:keypoints_x, -1 = joint not seen). Needs the
pose environment (mediapipe 0.10.21 pins numpy<2); the wrapper creates it on first use:

  bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py photos/ --output data/my-annotation.csv
  bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py a.jpg b.png --output ann.csv --min-visibility 0.3
  bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py shots/cam1 shots/cam2 --names relative \\
      --output shots.csv --draw shots-drawn     # rows cam1/0.jpg, cam2/0.jpg; skeletons drawn over the photos

Images with no person get a row of -1 (pair making skips them); unreadable files are left out; both
are listed with the reason. Each image is tried with grey borders of several widths, then (second pass) upscaled
and contrast-stretched; --min-detection-confidence below 0.5 finds more people in hard photos, and more false ones.
--output must not be one of the images; an existing one needs --force. Exit status: 0 when at least one image was
annotated, 1 when none was, 2 on bad arguments.
"""

import argparse
import sys
from pathlib import Path

from dgan_tf.cli.arguments import add_force_argument, fraction, run_reporting_errors
from dgan_tf.inference.keypoint_estimation import (
    DEFAULT_MIN_DETECTION_CONFIDENCE, DEFAULT_MIN_VISIBILITY, PoseEnvironmentError, annotate_images, find_images,
)
from dgan_tf.options import ROW_NAMES


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path, help="image files and/or folders of images (not recursive)")
    parser.add_argument("--output", type=Path, required=True, help="annotation CSV to write")
    add_force_argument(parser, "--output")
    parser.add_argument("--min-visibility", type=fraction, default=DEFAULT_MIN_VISIBILITY,
                        help="BlazePose visibility below which a joint is written as -1 "
                             f"(default {DEFAULT_MIN_VISIBILITY})")
    parser.add_argument("--min-detection-confidence", type=fraction, default=DEFAULT_MIN_DETECTION_CONFIDENCE,
                        help="BlazePose's person-detector threshold: lower finds people in darker, smaller or "
                             f"blurrier photos, and sometimes one where there is none (default "
                             f"{DEFAULT_MIN_DETECTION_CONFIDENCE})")
    parser.add_argument("--names", choices=ROW_NAMES, default="file",
                        help="name rows by file name (default), or by path from the images' common folder "
                             "(relative: photos/a/0.jpg and photos/b/0.jpg become a/0.jpg and b/0.jpg)")
    parser.add_argument("--draw", type=Path, metavar="DIR",
                        help="also write each image with its skeleton drawn over it into DIR (PNG, named as the rows)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None):
    # The pose environment missing, or an output that cannot be written: 1; bad arguments: 2.
    return run_reporting_errors(run, parse_args(argv), exit_codes=(((PoseEnvironmentError, OSError), 1),))


def run(args):
    paths = find_images(args.images, args.names)
    report = annotate_images(paths, args.output, args.min_visibility, progress=not args.no_progress,
                             force=args.force, names=args.names, draw_dir=args.draw,
                             min_detection_confidence=args.min_detection_confidence)
    for name, reason in report.no_person:
        print(f"no person: {name}: {reason}", file=sys.stderr)
    for path, reason in report.skipped:
        print(f"left out: {path}: {reason}", file=sys.stderr)
    print(report.summary() + (f"; skeletons drawn in {args.draw}" if args.draw and report.names else ""))
    return 0 if report.annotated > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
