"""Draw the person of a photo in new poses, with a training run's generator or an export.

Examples:
  python scripts/transfer.py --run runs/synthetic-dsc --source me.jpg --source-pose me.json \\
      --target-pose poses/ --output-dir out --gif                          # a folder of OpenPose JSON frames
  python scripts/transfer.py --run exports/dgan --source data/market-dataset/test/0364_c2s1_084546_01.jpg \\
      --source-pose data/market-annotation-test.csv:0364_c2s1_084546_01.jpg \\
      --target-pose walk_000.json walk_001.json data/market-annotation-test.csv:0364_c6s1_085426_03.jpg --output-dir out
  python scripts/transfer.py --run exports/dgan --source me.jpg --source-pose me.json --target-pose a.json \\
      --write-request request.json                                         # a TF Serving REST body instead

POSE: annotations.csv:NAME (one row of an annotation CSV), annotations.csv (all its rows but the source's, or
those --rows names), an OpenPose JSON file (pose_keypoints_2d, COCO-18 or BODY_25; the most confident person;
joints below --confidence missing), or a folder of OpenPose JSON files (natural order). Poses are in the source
photo's pixels unless --target-frame says otherwise. Photos of another size than the model's are resized and
padded, and the output is mapped back to the photo's size. Outputs: DIR/000_<pose>.png ... and, with --gif, DIR/transfer.gif (replaced
when there); an existing --write-request FILE needs --force. Every output path is checked before the model loads.
"""

import json
import sys
from pathlib import Path

from dgan_tf.cli.arguments import (
    add_force_argument, add_run_argument, image_size_arg, positive_int, program_parser, require_run,
    run_reporting_errors,
)
from dgan_tf.inference.poses import DEFAULT_CONFIDENCE
from dgan_tf.inference.transfer import DEFAULT_BATCH_SIZE, DEFAULT_FPS


def parse_args(argv):
    p = program_parser(__doc__)
    add_run_argument(p, "--checkpoint", "a run folder (generator.keras), a .keras file, or an export (version "
                                        "or model folder)")
    p.add_argument("--source", required=True, help="the photo of the person (any size; JPEG, PNG, ...)")
    p.add_argument("--source-pose", required=True, metavar="POSE", help="the photo's pose")
    p.add_argument("--target-pose", required=True, nargs="+", metavar="POSE",
                   help="one or more poses to draw the person in; a CSV or a folder is a sequence")
    p.add_argument("--rows", nargs="+", metavar="PATTERN",
                   help="of a whole CSV or a folder of JSON files, only the names matching one of these glob "
                        "patterns (e.g. 'walk_*'); the source's row is left out unless named exactly")
    p.add_argument("--output-dir", help="where the images go (required unless --write-request)")
    p.add_argument("--gif", action="store_true", help="also write transfer.gif, the sequence animated")
    p.add_argument("--fps", type=positive_int, default=DEFAULT_FPS,
                   help=f"GIF frames per second (default {DEFAULT_FPS})")
    p.add_argument("--confidence", type=float, default=DEFAULT_CONFIDENCE,
                   help=f"OpenPose joints below this confidence are missing (default {DEFAULT_CONFIDENCE})")
    p.add_argument("--target-frame", type=image_size_arg, metavar="HxW",
                   help="the image size the target poses were measured in (default: the source photo's)")
    p.add_argument("--fill-missing", action="store_true",
                   help="take a target pose's missing joints from the previous target pose (the original demo)")
    p.add_argument("--skip-incomplete", action="store_true",
                   help="skip target poses without both shoulders and hips, instead of stopping")
    p.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--write-request", metavar="FILE",
                   help="write the TF Serving REST request (row format) for these inputs to FILE and stop")
    p.add_argument("--encoded", action="store_true",
                   help="with --write-request: a serving_encoded body, the photo as a base64 PNG file (about 5 KB "
                        "of JSON per 128x64 instance instead of about 110 KB of integers)")
    add_force_argument(p, "the --write-request file")
    args = p.parse_args(argv)
    require_run(p, args)
    if not args.output_dir and not args.write_request:
        p.error("--output-dir is required (unless --write-request)")
    if args.encoded and not args.write_request:
        p.error("--encoded goes with --write-request")
    return args


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def read_inputs(args):
    """The photo, its pose and the target poses, checked (each pose inside its frame) before any model is loaded."""
    from dgan_tf.inference import poses as pose_io
    from dgan_tf.inference.transfer import check_pose_frames
    from dgan_tf.images import read_image

    image = read_image(args.source)
    source_pose = pose_io.require_torso(pose_io.read_pose(args.source_pose, args.confidence), "source pose")
    targets = [pose for spec in args.target_pose
               for pose in pose_io.read_poses(spec, args.confidence, args.rows, source_rows(args))]
    if args.fill_missing:
        targets = pose_io.fill_missing_from_previous(targets)
    kept = []
    for pose in targets:
        if args.skip_incomplete and pose.missing_torso_joints():
            print(f"skipped {pose.origin}: no {', '.join(pose.missing_torso_joints())}", file=sys.stderr)
            continue
        kept.append(pose_io.require_torso(pose, "target pose"))
    if not kept:
        raise ValueError("no target pose is left: every one lacks a shoulder or a hip (--skip-incomplete)")
    check_pose_frames(image, source_pose, kept, args.target_frame)
    return image, source_pose, kept


def source_rows(args):
    """The row names a whole target CSV leaves out: the source photo's file name and the --source-pose row."""
    from dgan_tf.inference.poses import row_of

    return {Path(args.source).name, row_of(args.source_pose)} - {None}


def input_files(args):
    """(label, path) of every input file named on the command line: the photo and the pose files."""
    files = [("the --source photo", Path(args.source))]
    for flag, specs in (("--source-pose", [args.source_pose]), ("--target-pose", args.target_pose)):
        for spec in specs:
            path = Path(spec)
            if not path.exists() and ":" in spec:  # annotations.csv:NAME
                path = Path(spec.rsplit(":", 1)[0])
            files.append((f"the {flag} file {path}", path))
    return files


def check_outputs(args, targets):
    """Everything transfer.py writes, checked before the model is loaded: the --write-request file, or the
    --output-dir folder and the images (and GIF) it will hold."""
    from dgan_tf.inference.transfer import GIF_NAME, output_name
    from dgan_tf.outputs import check_output_file, check_output_folder

    if args.write_request:
        check_output_file(args.write_request, "--write-request", inputs=input_files(args), force=args.force)
        return
    names = [output_name(i, pose.label) for i, pose in enumerate(targets)] + ([GIF_NAME] if args.gif else [])
    check_output_folder(args.output_dir, "--output-dir", files=names, inputs=input_files(args))


def run(args):
    from dgan_tf.inference import transfer as tr
    from dgan_tf.inference.generators import load_generator, model_image_size

    image, source_pose, targets = read_inputs(args)
    check_outputs(args, targets)
    if args.write_request:
        from dgan_tf.files import atomic_write_text
        from dgan_tf.inference.export import ENCODED_SIGNATURE, SERVING_SIGNATURE, photo_file, rest_request

        inputs = tr.prepare_inputs(image, source_pose, targets, model_image_size(args.run),
                                   args.target_frame)
        images, source_keypoints, target_keypoints = next(inputs.batches(len(targets)))
        if args.encoded:  # the photo's own JPEG file when the model sees its pixels as they are, else a PNG
            images = [photo_file(args.source, image, inputs.source_image)] * len(images)
        body = rest_request(images, source_keypoints, target_keypoints,
                            signature=ENCODED_SIGNATURE if args.encoded else SERVING_SIGNATURE)
        atomic_write_text(args.write_request, json.dumps(body, separators=(",", ":")))
        print(f"Wrote a TF Serving REST request for {body['signature_name']} ({len(targets)} instance"
              f"{'s' * (len(targets) != 1)}, one per target pose) to {args.write_request}")
        return 0
    generator = load_generator(args.run)
    inputs = tr.prepare_inputs(image, source_pose, targets, generator.image_size, args.target_frame)
    images = tr.transfer(generator, inputs, args.batch_size)
    paths = tr.write_outputs(args.output_dir, images, [pose.label for pose in targets], gif=args.gif, fps=args.fps)
    height, width = generator.image_size
    print(f"{len(images)} images of {Path(args.source).name} ({image.shape[0]}x{image.shape[1]}; model {height}x{width}"
          f", {type(generator).__name__} from {generator.source}) written to {args.output_dir}"
          + (f", animated in {paths[-1].name}" if args.gif else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
