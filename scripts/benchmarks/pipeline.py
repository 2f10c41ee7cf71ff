"""Input pipeline throughput: decoded pairs per second at 128x64 and 256x256 on synthetic data.

Usage: python scripts/benchmark.py pipeline [--batches 40] [--batch-size 32] [--repeats 5]
"""

import argparse
import tempfile
import time

from _common import machine_description, median_seconds


def main(argv):
    p = argparse.ArgumentParser()
    p.add_argument("--batches", type=int, default=40)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.pipeline import dataset_for_split
    from dgan_tf.data.synthetic import ensure_synthetic_dataset

    print(machine_description())
    with tempfile.TemporaryDirectory() as root:
        for size in ((128, 64), (256, 256)):
            data = get_dataset("synthetic", data_root=root, image_size=size)
            ensure_synthetic_dataset(data.data_dir, image_size=size, identities=40, images_per_identity=10)
            dataset, pairs, _, _ = dataset_for_split(data, "train", args.batch_size, seed=0)
            iterator = iter(dataset)

            def consume():
                for _ in range(args.batches):
                    next(iterator)

            start = time.perf_counter()
            median, times = median_seconds(consume, repeats=args.repeats, warmup=1)
            rate = args.batches * args.batch_size / median
            print(f"{size[0]}x{size[1]}: {len(pairs)} train pairs, batch {args.batch_size}: median {rate:,.0f} pairs/s "
                  f"over {args.repeats} runs of {args.batches} batches "
                  f"(runs: {', '.join(f'{args.batches * args.batch_size / t:,.0f}' for t in times)}); "
                  f"total {time.perf_counter() - start:.1f} s")
            del iterator, dataset  # stop the prefetch threads before the folder goes
    return 0
