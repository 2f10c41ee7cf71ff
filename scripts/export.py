"""Export a trained generator as a SavedModel for TF Serving (`python scripts/export.py --help`; the logic is in dgan_tf/cli/export.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.export import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
