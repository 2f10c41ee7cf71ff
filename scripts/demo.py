"""From a photo to a result in one command (`python scripts/demo.py --help`; the logic is in dgan_tf/cli/demo.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.demo import main

    return main


if __name__ == "__main__":
    launch(load_main)
