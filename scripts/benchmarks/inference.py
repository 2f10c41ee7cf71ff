"""Inference speed: the Keras generator (predict_on_batch) vs its SavedModel exports (serving_default), on this CPU.

Usage: python scripts/benchmark.py inference [--sizes 128x64,256x256] [--width 1.0] [--repeats 10]
       [--large-batch 32] [--large-repeats 3]

The paper's networks (width 1.0, random weights: speed does not depend on them) at each size: median batch-1
latency over --repeats calls and median batch-32 throughput over --large-repeats calls, each after a warm-up
call (tracing, Grappler); the paths' calls are interleaved, so that other jobs on the machine slow them alike. Keras gets float images in [-1, 1]; the exports (float32, and bfloat16 with
--precisions) get uint8 images and convert them in their graph, as TF Serving would run them. Goal
(set for this project): Market (128x64) <= 150 ms per image at batch 1 on the 2-core CPU.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from _common import machine_description, median_seconds  # noqa: E402

# A standing figure in a 128x64 frame, (y, x); scaled and centred for other sizes.
STANDING_POSE = np.array([
    [15, 32], [28, 32], [30, 22], [48, 20], [64, 19], [30, 42], [48, 44], [64, 45], [66, 26],
    [90, 26], [115, 25], [66, 38], [90, 38], [115, 39], [12, 30], [12, 34], [13, 27], [13, 37],
], dtype=np.float32)


def inputs_for(size, batch, rng):
    """uint8 images, float images and jittered source/target poses of one batch at `size`."""
    height, width = size
    scale = height / 128.0
    pose = STANDING_POSE * scale + np.float32([0, (width - 64 * scale) / 2])
    images = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
    source = np.round(pose + rng.normal(0, 2 * scale, (batch, 18, 2))).astype(np.float32)
    target = np.round(pose + rng.normal(0, 6 * scale, (batch, 18, 2))).astype(np.float32)
    return images, ((images / 255.0 - 0.5) * 2.0).astype(np.float32), source, target


def bench_size(size, args, rng, root):
    import keras
    import tensorflow as tf

    from dgan_tf.inference.export import export_generator
    from dgan_tf.models.generator import build_generator

    keras.utils.set_random_seed(0)
    generator = build_generator(size, width=args.width)
    signatures, notes = {}, []
    for precision in args.precisions.split(","):
        start = time.perf_counter()
        export_dir = export_generator(generator, root, model_name=f"g{size[0]}x{size[1]}-{precision}",
                                      precision=precision)
        export_seconds = time.perf_counter() - start
        start = time.perf_counter()
        signatures[f"SavedModel {precision} serving_default"] = \
            tf.saved_model.load(str(export_dir)).signatures["serving_default"]
        megabytes = sum(f.stat().st_size for f in export_dir.rglob("*") if f.is_file()) / 2**20
        notes.append(f"{precision} export: written in {export_seconds:.1f} s, {megabytes:.0f} MB, loaded in "
                     f"{time.perf_counter() - start:.1f} s")
    rows = []
    for batch, repeats in ((1, args.repeats), (args.large_batch, args.large_repeats)):
        images, floats, source, target = inputs_for(size, batch, rng)
        keras_call = lambda: generator.predict_on_batch([floats, source, target])  # noqa: E731
        served = {"source_image": tf.constant(images), "source_keypoints": tf.constant(source),
                  "target_keypoints": tf.constant(target)}
        calls = {"Keras float32 predict_on_batch": keras_call}
        for name, signature in signatures.items():
            calls[name] = lambda signature=signature: signature(**served)["generated_image"].numpy()
        first = {}
        for name, call in calls.items():
            start = time.perf_counter()
            call()  # warm-up: trace / graph optimisation
            first[name] = time.perf_counter() - start
        # Interleaved (one call of each path per round): a machine shared with other jobs slows all paths alike.
        times = {name: [] for name in calls}
        for _ in range(repeats):
            for name, call in calls.items():
                times[name].append(median_seconds(call, repeats=1, warmup=0)[0])
        for name in calls:
            median = statistics.median(times[name])
            rows.append(dict(size=f"{size[0]}x{size[1]}", path=name, batch=batch, median_s=median, times=times[name]))
            print(f"{size[0]}x{size[1]} {name} batch {batch}: median {median * 1000:.0f} ms "
                  f"({median / batch * 1000:.1f} ms/image, {batch / median:.2f} img/s) over {repeats} calls "
                  f"[{', '.join(f'{t:.3f}' for t in times[name])}]; first call {first[name]:.1f} s", flush=True)
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB
    print(f"{size[0]}x{size[1]}: {generator.count_params():,} parameters; {'; '.join(notes)}; peak memory of the "
          f"process so far {peak:.1f} GiB", flush=True)
    return rows


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="128x64,256x256")
    p.add_argument("--width", type=float, default=1.0, help="1.0: the paper's networks")
    p.add_argument("--repeats", type=int, default=10, help="timed batch-1 calls")
    p.add_argument("--large-batch", type=int, default=32)
    p.add_argument("--large-repeats", type=int, default=3, help="timed calls at --large-batch")
    p.add_argument("--precisions", default="float32,bfloat16", help="exports to time")
    args = p.parse_args(argv)
    print(machine_description(), flush=True)
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    rng = np.random.default_rng(0)
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for text in args.sizes.split(","):
            size = tuple(int(v) for v in text.split("x"))
            rows += bench_size(size, args, rng, root)
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}\n")
    print(f"| size | path | batch-1 latency (median) | batch-{args.large_batch} throughput (median) |")
    print("|---|---|---|---|")
    for size, path in dict.fromkeys((r["size"], r["path"]) for r in rows):
        one = next(r for r in rows if (r["size"], r["path"], r["batch"]) == (size, path, 1))
        many = next(r for r in rows if (r["size"], r["path"], r["batch"]) == (size, path, args.large_batch))
        print(f"| {size} | {path} | {one['median_s'] * 1000:.0f} ms | {args.large_batch / many['median_s']:.2f} img/s "
              f"({many['median_s'] / args.large_batch * 1000:.0f} ms/image) |")
    return 0
