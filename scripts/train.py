"""Train a Deformable GAN variant. Running the same command again resumes from the last checkpoint (`python scripts/train.py --help`; the logic is in dgan_tf/cli/train.py)."""

from _launch import launch


def load_main():
    from dgan_tf.cli.train import main

    return main


if __name__ == "__main__":
    launch(load_main)
