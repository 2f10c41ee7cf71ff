"""What every command-line program shares: argument types, the --run and --force flags and the error wrapper, so that
each spells and checks a flag the same way and reports an error (and Ctrl-C) the same way."""

import argparse
import sys

from dgan_tf.images import ImageSize
from dgan_tf.tensorflow_logs import VERBOSE_FLAG, VERBOSE_VARIABLE


def program_parser(doc):
    """The parser of a program whose docstring is `doc` (its --help), with the flag every program has: --verbose.

    `import dgan_tf` reads --verbose from the command line itself, before TensorFlow loads (dgan_tf.tensorflow_logs);
    the parser documents and accepts it."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(VERBOSE_FLAG, action="store_true",
                        help="show TensorFlow's C++ log lines (start-up notices, cuInit, grappler; also "
                             f"{VERBOSE_VARIABLE}=1) and the long form of notes, hidden by default")
    return parser


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


def fraction(text):
    """A number in [0, 1] (a confidence, a visibility)."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], received {text!r}")
    return value


def add_run_argument(parser, old_flag, help, required=True):
    """`--run RUN`, the one flag that names a training run in every program; `old_flag` (the flag of dgan_tf 0.2,
    --output-dir or --checkpoint) stays as a quiet alias. Check `require_run` after parsing when required."""
    parser.add_argument("--run", metavar="RUN", help=help + ("" if required else " (optional)"))
    parser.add_argument(old_flag, dest="run", help=argparse.SUPPRESS)


def add_force_argument(parser, what):
    """`--force`: replace `what` (an output file named on the command line) when it exists; refused otherwise."""
    parser.add_argument("--force", action="store_true", help=f"replace {what} if it exists")


def require_run(parser, args):
    if not args.run:
        parser.error("the following arguments are required: --run")


INTERRUPTED = ("stopped: interrupted (Ctrl-C); every file is written whole or not at all, so nothing is left "
               "half-written: run the same command again")


def run_reporting_errors(run, args, exit_codes=(), interrupted=INTERRUPTED):
    """run(args), every command-line program's body: an error a user can fix is printed as one `error:` line with
    an exit status and no traceback. exit_codes: ((exception types, status), ...) tried first; then ValueError and
    OSError (FileNotFoundError, WriteError) give 2. Ctrl-C prints `interrupted` and gives 130 (128 + SIGINT)."""
    try:
        return run(args)
    except KeyboardInterrupt:
        print(interrupted, file=sys.stderr)
        return 130
    except Exception as error:
        for types, code in (*exit_codes, ((ValueError, OSError), 2)):
            if isinstance(error, types):
                print(f"error: {error}", file=sys.stderr)
                return code
        raise
