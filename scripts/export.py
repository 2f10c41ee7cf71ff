"""Export a trained generator as a SavedModel for TF Serving (`python scripts/export.py --help`; the logic is in dgan_tf/cli/export.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.export import main

    return main


if __name__ == "__main__":
    launch(load_main)
