"""Generate every test pair with a trained generator and report the paper's metrics, or score any folder (`python scripts/test.py --help`; the logic is in dgan_tf/cli/test.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.test import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
