"""What every program wrapper in scripts/ shares: the repository on sys.path, and Ctrl-C while the package loads
(importing Keras and TensorFlow takes seconds) stopping with one line and exit status 130 instead of a traceback.
Nothing from dgan_tf is imported here: that import is what may be interrupted. Inside main(), the programs' own
error wrapper (dgan_tf.cli.arguments.run_reporting_errors) reports Ctrl-C the same way."""

import sys
from pathlib import Path

INTERRUPTED = "stopped: interrupted (Ctrl-C) while starting; nothing was written"


def launch(load_main):
    """sys.exit(main()), where load_main() imports the program and returns its main."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    try:
        main = load_main()
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        sys.exit(130)
    sys.exit(main())
