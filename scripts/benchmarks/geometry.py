"""Geometry and deformable-skip speed: batched keras.ops vs the original's per-pair numpy/skimage loop.

Usage: python scripts/benchmark.py geometry [--pairs 64] [--batch 16] [--repeats 5] [--levels 0,1,2,3]
         [--samplings nearest,bilinear] [--warp-gradient original|exact|both] [--part-max split|first|both]
         [--skip-only]
Prints the machine, then a table of medians with the 1-minute load average after each row. The DeformableSkip rows
(forward + backward to the features) run on the Keras backend: TensorFlow (tf.function) or, with KERAS_BACKEND=jax,
jax.jit, where they also give the memory XLA plans for the compiled step (temporaries, from memory_analysis()).
Target (set for this project): masks + affines for 64 pairs
at 256x256 in <= 50 ms on the 2-core CPU.
"""

import argparse
import itertools
import json
import os
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from _common import machine_description, median_seconds  # noqa: E402

IMAGE_SIZE = (256, 256)
# DeepFashion generator: appearance encoder level i has 256 / 2^i pixels and these filters (pose-gan
# conditional_gan.py:110 at 8693ec4).
LEVEL_FILTERS = (64, 128, 256, 512)
SHARED = REPO_ROOT.parent / "shared" / "annotations_real"


def _real_pairs(count):
    """`count` DeepFashion test pairs (source, target) (N, 18, 2) in (y, x), or None without ../shared."""
    annotations, pairs = SHARED / "fasion-annotation-test.csv", SHARED / "fashion-pairs-test.csv"
    if not (annotations.exists() and pairs.exists()):
        return None
    import pandas as pd

    frame = pd.read_csv(annotations, sep=":")
    keypoints = {row["name"]: np.stack([json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])], -1)
                 for _, row in frame.iterrows()}
    chosen = pd.read_csv(pairs).sample(count, random_state=0)
    source = np.stack([keypoints[name] for name in chosen["from"]]).astype(np.float32)
    target = np.stack([keypoints[name] for name in chosen["to"]]).astype(np.float32)
    return source, target


def _synthetic_pairs(count, rng):
    """A standing figure at 256x256 with jitter and a few missing joints."""
    from tests.test_geometry import BASE_POSE  # the repository root is on sys.path, tests/ is not

    base = BASE_POSE * 2.0 + np.array([0.0, 64.0], dtype=np.float32)
    poses = base[None] + rng.normal(0, 4, (2 * count, 18, 2)).astype(np.float32)
    poses = np.round(poses)
    missing = rng.uniform(size=(2 * count, 18)) < 0.05
    missing[:, [2, 5, 8, 11]] = False
    poses[missing] = -1
    return poses[:count], poses[count:]


def bench_geometry(pairs, repeats):
    import tensorflow as tf

    from dgan_tf.geometry import reference
    from dgan_tf.geometry.parts import part_affines, part_masks

    source, target = (tf.constant(x) for x in pairs)

    def geometry(s, t):
        return part_masks(t, IMAGE_SIZE), part_affines(s, t)

    rows = []
    for name, function in (("tf.function", tf.function(geometry)), ("tf.function(jit_compile=True)", tf.function(geometry, jit_compile=True))):
        # On the CPU a tf.function returns once its outputs exist: no copy of the 168 MB masks to numpy.
        seconds, _ = median_seconds(lambda: function(source, target), repeats=repeats, warmup=2)
        rows.append((f"masks + affines, {len(pairs[0])} pairs 256x256, {name}", seconds))
    masks_only = tf.function(lambda t: part_masks(t, IMAGE_SIZE))
    affines_only = tf.function(part_affines)
    rows.append(("  of which masks only, tf.function", median_seconds(lambda: masks_only(target), repeats, 2)[0]))
    rows.append(("  of which affines only, tf.function", median_seconds(lambda: affines_only(source, target), repeats, 2)[0]))

    def reference_loop():
        for s, t in zip(pairs[0], pairs[1]):
            reference.part_masks(t, IMAGE_SIZE)
            reference.part_affines(s, t)

    rows.append(("per-pair numpy/skimage reference loop (the original's way)", median_seconds(reference_loop, max(1, repeats // 2), 0)[0]))
    return rows


def _skip_step(layer, masks, affines):
    """Forward + backward of sum(skip) to the features, compiled for the backend; (step, XLA temporaries in bytes)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        step = jax.jit(jax.value_and_grad(lambda f: layer([f, masks, affines]).sum()))

        def memory(features):
            stats = step.lower(features).compile().memory_analysis()
            return None if stats is None else stats.temp_size_in_bytes

        return lambda f: jax.block_until_ready(step(f)), memory
    import tensorflow as tf

    @tf.function
    def step(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            loss = tf.reduce_sum(layer([f, masks, affines]))
        return loss, tape.gradient(loss, f)

    return step, lambda features: None


def bench_skip(batch, repeats, levels, rng, samplings=("nearest", "bilinear"), warp_gradients=("original", "exact"),
               part_maxes=("split", "first")):
    """DeformableSkip forward + backward to the features, per level, sampling, gradient rule and part max."""
    import keras

    from dgan_tf.geometry.parts import part_affines, part_masks
    from dgan_tf.layers.deformable_skip import DeformableSkip

    pose = _synthetic_pairs(batch, rng)
    masks = keras.ops.convert_to_tensor(part_masks(pose[1], IMAGE_SIZE))
    affines = keras.ops.convert_to_tensor(part_affines(pose[0], pose[1]))
    rows = []
    for level in levels:
        size = IMAGE_SIZE[0] // 2 ** level
        shape = (batch, size, size, LEVEL_FILTERS[level])
        features = keras.ops.convert_to_tensor(rng.normal(size=shape).astype(np.float32))
        for warp_sampling, warp_gradient, part_max in itertools.product(samplings, warp_gradients, part_maxes):
            layer = DeformableSkip(warp_sampling=warp_sampling, warp_gradient=warp_gradient, part_max=part_max)
            step, memory = _skip_step(layer, masks, affines)
            seconds, _ = median_seconds(lambda: step(features), repeats=repeats, warmup=1)
            temporaries = memory(features)
            name = (f"DeformableSkip fwd+bwd level {level} ({'x'.join(map(str, shape))}), {warp_sampling}, "
                    f"{warp_gradient} gradient, part_max {part_max}")
            if temporaries is not None:
                name += f", XLA temporaries {temporaries / 2 ** 20:.0f} MiB"
            rows.append((name, seconds, os.getloadavg()[0]))
    return rows


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16, help="batch of the DeformableSkip runs")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--levels", default="0,1,2,3", help="encoder levels to time, e.g. 1,2,3")
    parser.add_argument("--samplings", default="nearest,bilinear", help="warp samplings to time")
    parser.add_argument("--warp-gradient", choices=("original", "exact", "both"), default="both",
                        help="gradient rule of the part warps to time (default both)")
    parser.add_argument("--part-max", choices=("split", "first", "both"), default="both",
                        help="rule of the max over the parts to time (default both)")
    parser.add_argument("--skip-only", action="store_true")
    parser.add_argument("--geometry-only", action="store_true")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    print(machine_description())
    print("command: python scripts/benchmark.py geometry " + " ".join(argv))
    rows = []
    if not args.skip_only:
        pairs = _real_pairs(args.pairs)
        print("pairs:", "DeepFashion test pairs" if pairs is not None else "synthetic (../shared not found)")
        pairs = pairs if pairs is not None else _synthetic_pairs(args.pairs, rng)
        rows += bench_geometry(pairs, args.repeats)
    if not args.geometry_only:
        gradients = ("original", "exact") if args.warp_gradient == "both" else (args.warp_gradient,)
        part_maxes = ("split", "first") if args.part_max == "both" else (args.part_max,)
        rows += bench_skip(args.batch, args.repeats, [int(v) for v in args.levels.split(",") if v], rng,
                           tuple(v for v in args.samplings.split(",") if v), gradients, part_maxes)
    width = max(len(row[0]) for row in rows)
    print(f"{'what':<{width}}  median ms  load")
    for name, seconds, *load in rows:
        print(f"{name:<{width}}  {seconds * 1e3:9.1f}  {load[0] if load else os.getloadavg()[0]:4.2f}")
    if not args.skip_only:
        batched = min(row[1] for row in rows[:2])
        print(f"speed-up of the batched geometry over the per-pair loop: {rows[4][1] / batched:.1f}x; "
              f"target <= 50 ms: {'met' if batched <= 0.05 else 'NOT met'}")
    return 0
