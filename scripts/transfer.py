"""Draw the person of a photo in new poses with a trained generator or an export (`python scripts/transfer.py --help`; the logic is in dgan_tf/cli/transfer.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.transfer import main

    return main


if __name__ == "__main__":
    launch(load_main)
