"""Lay out downloaded Market-1501 or DeepFashion images as the training code expects (no resizing) (`python scripts/prepare_dataset.py --help`; the logic is in dgan_tf/cli/prepare_dataset.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.prepare_dataset import main

    return main


if __name__ == "__main__":
    launch(load_main)
