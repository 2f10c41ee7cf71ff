"""Generate every test pair with a trained generator and report the paper's metrics, or score any folder (`python scripts/test.py --help`; the logic is in dgan_tf/cli/test.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.test import main

    return main


if __name__ == "__main__":
    launch(load_main)
