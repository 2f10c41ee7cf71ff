"""Build a pair CSV from an annotation CSV, as the original's create_pairs_dataset.py did (`python scripts/make_pairs.py --help`; the logic is in dgan_tf/cli/make_pairs.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.make_pairs import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
