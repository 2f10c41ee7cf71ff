"""Build a pair CSV from an annotation CSV, as the original's create_pairs_dataset.py did (`python scripts/make_pairs.py --help`; the logic is in dgan_tf/cli/make_pairs.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.make_pairs import main

    return main


if __name__ == "__main__":
    launch(load_main)
