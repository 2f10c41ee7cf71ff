"""Generate the synthetic articulated-figure dataset in the original's layout (`python scripts/make_synthetic.py --help`; the logic is in dgan_tf/cli/make_synthetic.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.make_synthetic import main

    return main


if __name__ == "__main__":
    launch(load_main)
