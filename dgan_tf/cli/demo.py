"""One command from a photo to a result, like the original's demo.py: the person of PHOTO drawn in each target pose,
a strip per target (source | target photo or skeleton | generated) and, with --gif, an animation of the strips.

Examples:
  python scripts/demo.py me.jpg --target dance.gif --gif                     # a video's frames, estimated
  python scripts/demo.py ../shared/real_images/walk/source-image.jpg --target ../shared/real_images/walk \\
      --rows 'denis_walk00000*' --gif                                        # a folder of photos, narrowed by name
  python scripts/demo.py me.jpg --target walk-annotation.csv --run exports/dgan   # every row but me.jpg's
  python scripts/demo.py me.jpg --source-pose me.json --target poses/        # OpenPose files; no estimation at all

TARGET: a photo, a folder of photos (natural order; the source photo left out), a video (GIF; .mp4 and other
formats need `pip install imageio-ffmpeg`), an annotation CSV (every row but the source photo's), annotations.csv:NAME
(one row), an OpenPose JSON file or a folder of them. --rows narrows a CSV or a folder to the names matching its
glob patterns (the source's row is taken only when named exactly). Photos and frames, and PHOTO unless
--source-pose gives its pose, are estimated by BlazePose in the pose environment (scripts/with_pose_env.sh builds
.venv-pose on first use, about a minute). Each photo is cropped to its person (the keypoints' box plus a margin, to
the model's aspect; --no-crop uses whole photos). A target with no person, or without both shoulders and hips after
its missing joints were taken from the previous one of its sequence (--no-fill-missing: not), is skipped with a note.

The model: --run RUN (a run folder, a .keras file or an export); default runs/synthetic-dsc, the README's main job.
Outputs: DIR/NNN_<target>.png (NNN: the target's place in the order given) and, with --gif, DIR/demo.gif (enlarged
to at least 256 pixels tall); DIR defaults to outputs/demo-<photo name>. Exit status: 0, 1 when the keypoint
estimator cannot run, 2 on bad input (checked before any estimation or model loading).
"""

import argparse
import sys
from pathlib import Path

from dgan_tf.cli.arguments import fraction, image_size_arg, positive_int, run_reporting_errors
from dgan_tf.inference.demo import DEFAULT_RUN
from dgan_tf.inference.keypoint_estimation import DEFAULT_MIN_DETECTION_CONFIDENCE
from dgan_tf.inference.poses import DEFAULT_CONFIDENCE
from dgan_tf.inference.transfer import DEFAULT_BATCH_SIZE, DEFAULT_FPS


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("photo", help="the photo of the person (any size, JPEG, PNG, ...)")
    p.add_argument("--target", required=True, nargs="+", metavar="TARGET", help="the poses to draw the person in")
    p.add_argument("--run", metavar="RUN", help=f"a run folder, a .keras file or an export (default {DEFAULT_RUN})")
    p.add_argument("--source-pose", metavar="POSE", help="the photo's pose (annotations.csv:NAME or OpenPose JSON) "
                                                         "instead of estimating it")
    p.add_argument("--rows", nargs="+", metavar="PATTERN",
                   help="of a CSV or a folder, only the names matching one of these glob patterns (e.g. 'walk_*')")
    p.add_argument("--output-dir", help="where the strips go (default outputs/demo-<photo name>)")
    p.add_argument("--gif", action="store_true", help="also write demo.gif, the strips animated")
    p.add_argument("--fps", type=positive_int, default=DEFAULT_FPS,
                   help=f"GIF frames per second (default {DEFAULT_FPS})")
    p.add_argument("--every", type=positive_int, default=1, help="of a video, every N-th frame (default 1: all)")
    p.add_argument("--no-crop", action="store_true", help="use whole photos instead of cropping to the person")
    p.add_argument("--no-fill-missing", action="store_true",
                   help="do not take a target's missing joints from the previous target of its sequence")
    p.add_argument("--min-detection-confidence", type=fraction, default=DEFAULT_MIN_DETECTION_CONFIDENCE,
                   help="the keypoint estimator's person-detector threshold; lower finds people in harder photos "
                        f"(default {DEFAULT_MIN_DETECTION_CONFIDENCE})")
    p.add_argument("--confidence", type=fraction, default=DEFAULT_CONFIDENCE,
                   help=f"OpenPose joints below this confidence are missing (default {DEFAULT_CONFIDENCE})")
    p.add_argument("--target-frame", type=image_size_arg, metavar="HxW",
                   help="the image size poses without a photo (CSV, OpenPose) were measured in (default: the "
                        "source photo's)")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    return p.parse_args(argv)


def main(argv=None):
    from dgan_tf.evaluation.pckh import PoseEstimationError

    return run_reporting_errors(run, parse_args(argv), exit_codes=((PoseEstimationError, 1),))


def model_path(run):
    """--run, or the README's main job's run when it exists; FileNotFoundError saying how to get one otherwise."""
    if run:
        return run
    if Path(DEFAULT_RUN).exists():
        return DEFAULT_RUN
    raise FileNotFoundError(
        f"no model: --run was not given and {DEFAULT_RUN}, the README's main job, is not in {Path.cwd()}; train it "
        "with `bash scripts/with_env.sh python scripts/train.py` (about 6 minutes on a 2-core CPU), or give --run "
        "RUN: a run folder, a .keras file or an export")


def note(message):
    print(message, file=sys.stderr)


def run(args):
    from dgan_tf.images import read_image
    from dgan_tf.inference import demo, poses as pose_io, transfer as tr
    from dgan_tf.inference.generators import load_generator, model_image_size
    from dgan_tf.outputs import check_output_folder

    photo = read_image(args.photo)
    model = model_path(args.run)
    model_size = model_image_size(model)
    source_pose = None
    if args.source_pose:
        source_pose = pose_io.require_inside(pose_io.read_pose(args.source_pose, args.confidence), photo.shape[:2],
                                             "source pose", "the photo", "the source pose must be in the photo's "
                                             "pixels").keypoints_yx
    exclude = {Path(args.photo).name, pose_io.row_of(args.source_pose or "")} - {None}
    targets = demo.read_targets(args.target, args.photo, args.target_frame or photo.shape[:2], args.rows, exclude,
                                args.confidence, args.every)
    if not targets:
        raise ValueError("no target: every --target is empty")
    output_dir = Path(args.output_dir or f"outputs/demo-{Path(args.photo).stem}")
    names = [tr.output_name(index, target.label) for index, target in enumerate(targets)]
    inputs = [("the photo", args.photo)] + [(f"the --target {t}", t) for t in args.target if Path(t).is_file()]
    check_output_folder(output_dir, "--output-dir", files=names + [demo.GIF_NAME], inputs=inputs)

    to_estimate = [t for t in targets if t.keypoints_yx is None]
    found = demo.estimate_poses(([photo] if source_pose is None else []) + [t.image for t in to_estimate],
                                args.min_detection_confidence)
    if source_pose is None:
        source_pose, found = found[0], found[1:]
        if demo.no_person(source_pose):
            raise ValueError(f"no person found in {args.photo}: give its pose with --source-pose POSE, or try a lower "
                             "--min-detection-confidence (e.g. 0.3)")
    pose_io.require_torso(pose_io.Pose(source_pose, "source", args.photo), "source pose of")
    for target, keypoints in zip(to_estimate, found):
        target.keypoints_yx = keypoints
    complete = demo.complete_targets(targets, fill=not args.no_fill_missing, note=note)
    if not complete:
        raise ValueError(f"no target is left: none of the {len(targets)} has a person with both shoulders and hips")

    crop = not args.no_crop
    source_keypoints, source_image = demo.into_model_frame(source_pose, photo.shape[:2], model_size, photo, crop)
    framed = [demo.into_model_frame(t.keypoints_yx, t.frame_size, model_size, t.image, crop) for _, t in complete]
    generator = load_generator(model)
    target_poses = [pose_io.Pose(keypoints, t.label, t.origin) for (keypoints, _), (_, t) in zip(framed, complete)]
    transfer_inputs = tr.prepare_inputs(source_image, pose_io.Pose(source_keypoints, "source", args.photo),
                                        target_poses, model_size, target_frame=model_size)
    generated = tr.transfer(generator, transfer_inputs, args.batch_size)
    strips = [demo.make_strip(source_image, keypoints, image, target_image)
              for (keypoints, target_image), image in zip(framed, generated)]
    demo.write_strips(output_dir, strips, [names[index] for index, _ in complete], args.gif, args.fps)
    height, width = model_size
    print(f"{len(strips)} strip{'s' * (len(strips) != 1)} of {Path(args.photo).name} (source | target | generated, "
          f"{height}x{width} each; {type(generator).__name__} from {generator.source}) written to {output_dir}"
          + (f", animated in {demo.GIF_NAME}" if args.gif else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
