"""Export a trained generator as a SavedModel for TF Serving: DIR/<model name>/<version>/.

Examples:
  python scripts/export.py --run runs/synthetic-dsc                          # exports/dgan/1 (or the next free)
  python scripts/export.py --run runs/market-full --output-dir /srv/models --model-name market --version 3
  saved_model_cli show --all --dir exports/dgan/1                            # the signatures
  docker run -p 8501:8501 --mount type=bind,source=$PWD/exports/dgan,target=/models/dgan \\
      -e MODEL_NAME=dgan -t tensorflow/serving                               # serve it (REST on port 8501)
  (docs/serving/ holds a models.config and batching_parameters.txt for TF Serving's --model_config_file and
  --batching_parameters_file)

Signatures: serving_default takes source_image uint8 (batch, H, W, 3) and source_keypoints / target_keypoints
float32 (batch, 18, 2) as (y, x) pixels, -1 for a missing joint, and returns generated_image uint8; serving_float
is the same with images float32 in [-1, 1]; serving_encoded takes source_image_bytes (JPEG or PNG files, base64 in
REST) and returns generated_image_bytes (PNG files). The run's config.json and the versions travel in assets/; one
warm-up request per signature in assets.extra/tf_serving_warmup_requests (TF Serving replays them while loading).
"""

import sys

from dgan_tf.cli.arguments import add_run_argument, positive_int, program_parser, require_run, run_reporting_errors
from dgan_tf.inference.export import DEFAULT_MODEL_NAME, DEFAULT_OUTPUT_DIR
from dgan_tf.options import EXPORT_PRECISIONS


def parse_args(argv):
    p = program_parser(__doc__)
    add_run_argument(p, "--checkpoint", "a run folder written by train.py, or its generator.keras")
    p.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help=f"default {DEFAULT_OUTPUT_DIR}")
    p.add_argument("--model-name", default=DEFAULT_MODEL_NAME,
                   help=f"the model folder under --output-dir, TF Serving's MODEL_NAME (default {DEFAULT_MODEL_NAME})")
    p.add_argument("--version", type=positive_int, help="version folder (default: 1, or one more than the highest)")
    p.add_argument("--precision", choices=EXPORT_PRECISIONS, default="float32",
                   help="what the graph computes in: float32 (default, equals the Keras model) or bfloat16 "
                        "(several times faster on CPUs with AMX/AVX512-BF16 and on GPUs; outputs a few levels apart)")
    args = p.parse_args(argv)
    require_run(p, args)
    return args


def main(argv=None):
    return run_reporting_errors(run, parse_args(argv))


def run(args):
    from dgan_tf.inference.export import WARMUP_FILE, export_run, read_export_metadata

    path = export_run(args.run, args.output_dir, args.model_name, args.version, args.precision)
    metadata = read_export_metadata(path)
    height, width = metadata["image_size"]
    print(f"Exported {args.run} ({metadata['variant'] or 'generator'}, {height}x{width}, "
          f"{metadata['precision']}) to {path}\n"
          f"signatures: {', '.join(metadata['signatures'])} (warm-up requests in {WARMUP_FILE})\n"
          f"inspect: saved_model_cli show --all --dir {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
