"""Annotate your own photos with 18 keypoints per image, offline (`bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py --help`; the logic is in dgan_tf/cli/estimate_keypoints.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.estimate_keypoints import main

    return main


if __name__ == "__main__":
    launch(load_main)
