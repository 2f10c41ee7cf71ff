"""Convert the authors' released weights into a run folder (`python scripts/convert_original.py --help`; the logic is in dgan_tf/cli/convert_original.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.convert_original import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
