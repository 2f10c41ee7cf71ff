"""Lay out downloaded Market-1501 or DeepFashion images as the training code expects (no resizing) (`python scripts/prepare_dataset.py --help`; the logic is in dgan_tf/cli/prepare_dataset.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.prepare_dataset import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
