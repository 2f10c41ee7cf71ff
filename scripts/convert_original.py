"""Convert the authors' released weights into a run folder (`python scripts/convert_original.py --help`; the logic is in dgan_tf/cli/convert_original.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.convert_original import main

    return main


if __name__ == "__main__":
    launch(load_main)
