"""Synthetic dataset generation speed: the default 2,000 images at 128x64, and a smaller 256x256 run.

Usage: python scripts/benchmark.py synthetic [--repeats 3] [--workers N] [--identities-256 20]
Times make_synthetic_dataset into a temporary folder (rendering, JPEG writing, CSVs, pairs).
Target: 2,000 images at 128x64 in under 30 s on the 2-core development machine.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

from _common import machine_description, median_seconds

from dgan_tf.data import synthetic


def _timed_generation(image_size, identities, images_per_identity, workers, repeats):
    """Median seconds of generating a fresh dataset (each run into an empty folder) and all the times."""
    root = Path(tempfile.mkdtemp(prefix="bench-synthetic-"))
    runs = iter(range(repeats + 1))

    def generate():
        out = root / f"run{next(runs)}"
        synthetic.make_synthetic_dataset(out, image_size, identities=identities,
                                         images_per_identity=images_per_identity, workers=workers)
        shutil.rmtree(out)

    try:
        return median_seconds(generate, repeats=repeats, warmup=0)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv):
    parser = argparse.ArgumentParser(prog="benchmark.py synthetic", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs at 128x64 (median reported)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: up to 2)")
    parser.add_argument("--identities-256", type=int, default=20, help="identities of the 256x256 run (x 10 images)")
    args = parser.parse_args(argv)

    print(machine_description())
    print(f"command: python scripts/benchmark.py synthetic {' '.join(argv)}".rstrip())
    images = synthetic.DEFAULT_IDENTITIES * synthetic.DEFAULT_IMAGES_PER_IDENTITY
    median, times = _timed_generation((128, 64), synthetic.DEFAULT_IDENTITIES,
                                      synthetic.DEFAULT_IMAGES_PER_IDENTITY, args.workers, args.repeats)
    print(f"128x64: {images} images, median {median:.2f} s over {args.repeats} runs "
          f"({', '.join(f'{t:.2f}' for t in times)}), {images / median:.0f} images/s")
    images_256 = args.identities_256 * synthetic.DEFAULT_IMAGES_PER_IDENTITY
    median, times = _timed_generation((256, 256), args.identities_256, synthetic.DEFAULT_IMAGES_PER_IDENTITY,
                                      args.workers, 1)
    print(f"256x256: {images_256} images, {median:.2f} s (one run), {images_256 / median:.0f} images/s")
    return 0
