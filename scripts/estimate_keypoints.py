"""Annotate your own photos with 18 keypoints per image, offline (`bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py --help`; the logic is in dgan_tf/cli/estimate_keypoints.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgan_tf.cli.estimate_keypoints import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
