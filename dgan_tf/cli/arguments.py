"""Argument types shared by the command-line programs, so every program spells and checks a flag the same way."""

import argparse
import sys

from dgan_tf.images import ImageSize


def image_size_arg(text):
    """--image-size HxW -> ImageSize, through the one image-size parser."""
    try:
        return ImageSize.of(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, received {text!r}")
    return value


def add_run_argument(parser, old_flag, help, required=True):
    """`--run RUN`, the one flag that names a training run in every program; `old_flag` (the flag of dgan_tf 0.2,
    --output-dir or --checkpoint) stays as a quiet alias. Check `require_run` after parsing when required."""
    parser.add_argument("--run", metavar="RUN", help=help + ("" if required else " (optional)"))
    parser.add_argument(old_flag, dest="run", help=argparse.SUPPRESS)


def require_run(parser, args):
    if not args.run:
        parser.error("the following arguments are required: --run")


def run_reporting_errors(run, args):
    """run(args), with the errors a user can fix printed as one `error:` line and exit status 2 (no traceback)."""
    try:
        return run(args)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
