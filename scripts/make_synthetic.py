"""Generate the synthetic articulated-figure dataset in the original's layout (`python scripts/make_synthetic.py --help`; the logic is in dgan_tf/cli/make_synthetic.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.make_synthetic import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
