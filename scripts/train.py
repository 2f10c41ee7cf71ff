"""Train a Deformable GAN variant. Running the same command again resumes from the last checkpoint (`python scripts/train.py --help`; the logic is in dgan_tf/cli/train.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.train import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
