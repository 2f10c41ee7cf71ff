"""Draw the person of a photo in new poses with a trained generator or an export (`python scripts/transfer.py --help`; the logic is in dgan_tf/cli/transfer.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.transfer import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
