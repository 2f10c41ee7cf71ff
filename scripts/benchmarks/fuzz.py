"""Keypoint fuzz: hostile keypoint sets through the keypoint guard and the geometry; counts NaN / Inf.

Usage: python scripts/benchmark.py fuzz [--sets 10000] [--batch 500] [--seed 0] [--generator-sets 0] [--no-guard]
Each set is a (source, target) pair of (18, 2) keypoints of one of these layouts: any float64 bit pattern (NaN,
Inf, subnormals, 1e308...), joints around and far outside the frame, all or most joints missing, collinear,
coincident, extreme values only, a valid pose with a few hostile joints; half the batches float32, half float64.
The guard (`sanitize_keypoints`) then part masks, part affines and pose heatmaps run batched in one tf.function;
a set counts as bad when any of its outputs holds NaN or Inf (or a mask value other than 0 or 1).
--generator-sets N also runs N sets through a tiny generator (width 0.0625) with the gradient of every weight.
--no-guard runs the same geometry on the raw keypoints, to show what the guard prevents.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT))

from _common import machine_description  # noqa: E402

IMAGE_SIZE = (128, 64)
LAYOUTS = ("bits", "frame", "missing", "collinear", "coincident", "extreme", "mixed")
HOSTILE = np.array([np.nan, np.inf, -np.inf, 1e36, -1e36, 1e300, -1e300, 3.4e38, -1.0, 0.0, 1e-45, -0.5,
                    2.0 ** 31, -(2.0 ** 31), 127.5, 191.9, -128.0, -64.1, 1e7, 5e-324])


def valid_poses(rng, count):
    height, width = IMAGE_SIZE
    poses = np.stack([rng.uniform(5, height - 5, (count, 18)), rng.uniform(5, width - 5, (count, 18))], -1)
    poses[rng.uniform(size=(count, 18)) < 0.1] = -1
    return poses


def keypoint_sets(rng, count, layout):
    """(count, 18, 2) float64 keypoints of one layout."""
    height, width = IMAGE_SIZE
    shape = (count, 18, 2)
    if layout == "bits":
        return rng.integers(0, 2 ** 64, size=shape, dtype=np.uint64).view(np.float64)
    if layout == "frame":
        return np.stack([rng.uniform(-1.5 * height, 2.5 * height, shape[:2]),
                         rng.uniform(-1.5 * width, 2.5 * width, shape[:2])], -1)
    if layout == "missing":
        keypoints = np.full(shape, -1.0)
        keypoints[rng.uniform(size=shape[:2]) < 0.2] = [10.0, 10.0]
        return keypoints
    if layout == "collinear":
        t = rng.uniform(0, 1, shape[:2])
        slope = rng.uniform(-2, 2, (count, 1))
        return np.stack([5 + 100 * t, 30 + slope * 20 * t], -1)
    if layout == "coincident":
        return np.broadcast_to(rng.uniform(0, 60, (count, 1, 2)), shape).copy()
    if layout == "extreme":
        return rng.choice(HOSTILE, size=shape)
    keypoints = valid_poses(rng, count)
    bad = rng.uniform(size=shape) < 0.15
    keypoints[bad] = rng.choice(HOSTILE, size=int(bad.sum()))
    return keypoints


def make_batch(rng, count):
    """Source and target keypoints (count, 18, 2): each set of a random layout."""
    layouts = rng.integers(0, len(LAYOUTS), size=(2, count))
    out = []
    for row in layouts:
        sets = np.empty((count, 18, 2))
        for index, layout in enumerate(LAYOUTS):
            chosen = row == index
            if chosen.any():
                sets[chosen] = keypoint_sets(rng, int(chosen.sum()), layout)
        out.append(sets)
    return out


def hostile_count(source, target):
    """Sets with at least one non-finite or out-of-frame value (how many hostile sets were tried)."""
    height, width = IMAGE_SIZE
    with np.errstate(invalid="ignore"):
        def bad(k):
            y, x = k[..., 0], k[..., 1]
            inside = (y >= -height) & (y < 2 * height) & (x >= -width) & (x < 2 * width)
            return ~np.all(inside | ((y == -1) & (x == -1)), axis=1)
        return int(np.sum(bad(source) | bad(target)))


def geometry_function(guard):
    import tensorflow as tf

    from dgan_tf.geometry.heatmaps import pose_heatmaps
    from dgan_tf.geometry.keypoints import sanitize_keypoints
    from dgan_tf.geometry.parts import part_affines, part_masks

    @tf.function(reduce_retracing=True)
    def run(source, target):
        if guard:
            source, target = sanitize_keypoints(source, IMAGE_SIZE), sanitize_keypoints(target, IMAGE_SIZE)
        else:
            source, target = tf.cast(source, tf.float32), tf.cast(target, tf.float32)
        masks = part_masks(target, IMAGE_SIZE)  # (B, 10, H, W)
        affines = part_affines(source, target)  # (B, 10, 8)
        heatmaps = pose_heatmaps(target, IMAGE_SIZE)  # (B, H, W, 18)
        bad_masks = tf.reduce_any(tf.logical_and(tf.not_equal(masks, 0.0), tf.not_equal(masks, 1.0)), axis=[1, 2, 3])
        nonfinite = tf.logical_not(tf.logical_and(tf.reduce_all(tf.math.is_finite(affines), axis=[1, 2]),
                                                  tf.reduce_all(tf.math.is_finite(heatmaps), axis=[1, 2, 3])))
        nan = tf.logical_or(tf.reduce_any(tf.math.is_nan(affines), axis=[1, 2]),
                            tf.reduce_any(tf.math.is_nan(heatmaps), axis=[1, 2, 3]))
        nan = tf.logical_or(nan, tf.reduce_any(tf.math.is_nan(masks), axis=[1, 2, 3]))
        return nan, tf.logical_and(nonfinite, tf.logical_not(nan)), bad_masks

    return run


def fuzz_geometry(sets, batch, seed, guard):
    rng = np.random.default_rng(seed)
    run = geometry_function(guard)
    tried = hostile = nan_sets = inf_sets = mask_sets = 0
    start = time.perf_counter()
    while tried < sets:
        count = min(batch, sets - tried)
        source, target = make_batch(rng, count)
        dtype = np.float32 if (tried // batch) % 2 else np.float64
        with np.errstate(over="ignore", invalid="ignore"):
            source, target = source.astype(dtype), target.astype(dtype)
        hostile += hostile_count(source.astype(np.float64), target.astype(np.float64))
        nan, inf, bad_masks = (x.numpy() for x in run(source, target))
        nan_sets += int(nan.sum())
        inf_sets += int(inf.sum())
        mask_sets += int(bad_masks.sum())
        tried += count
    return dict(tried=tried, hostile=hostile, nan=nan_sets, inf=inf_sets, bad_masks=mask_sets,
                seconds=time.perf_counter() - start)


def fuzz_generator(sets, seed, batch=8):
    import keras
    import tensorflow as tf

    from dgan_tf.models.generator import build_generator

    keras.utils.set_random_seed(seed)
    generator = build_generator(IMAGE_SIZE, width=0.0625)
    weights = generator.trainable_variables

    @tf.function(reduce_retracing=True)
    def run(images, source, target):
        with tf.GradientTape() as tape:
            out = generator([images, source, target], training=True)
            loss = tf.reduce_mean(tf.square(out))
        grads = tape.gradient(loss, weights)
        finite_grads = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])
        return tf.reduce_all(tf.math.is_finite(out), axis=[1, 2, 3]), finite_grads

    rng = np.random.default_rng(seed + 1)
    tried = bad_images = bad_gradients = 0
    start = time.perf_counter()
    while tried < sets:
        source, target = make_batch(rng, batch)
        with np.errstate(over="ignore", invalid="ignore"):
            source, target = source.astype(np.float32), target.astype(np.float32)
        images = rng.uniform(-1, 1, (batch, *IMAGE_SIZE, 3)).astype(np.float32)
        finite_images, finite_grads = run(images, source, target)
        bad_images += int((~finite_images.numpy()).sum())
        bad_gradients += int(not bool(finite_grads))
        tried += batch
    return dict(tried=tried, bad_images=bad_images, bad_gradient_batches=bad_gradients, batches=tried // batch,
                seconds=time.perf_counter() - start)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=10000, help="keypoint sets (source, target pairs) to try")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--generator-sets", type=int, default=0, help="also run this many through a tiny generator")
    parser.add_argument("--no-guard", action="store_true", help="geometry on the raw keypoints (for comparison)")
    args = parser.parse_args(argv)
    print(machine_description())
    print("command: python scripts/benchmark.py fuzz " + " ".join(argv))
    result = fuzz_geometry(args.sets, args.batch, args.seed, guard=not args.no_guard)
    label = "raw keypoints (no guard)" if args.no_guard else "sanitize_keypoints"
    print(f"geometry ({label} -> part masks, part affines, heatmaps at {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}): "
          f"{result['tried']} sets tried ({result['hostile']} with a non-finite or far out-of-frame value), "
          f"{result['nan']} with NaN, {result['inf']} with Inf (and no NaN), {result['bad_masks']} with a mask "
          f"value not 0/1; {result['seconds']:.1f} s ({result['tried'] / result['seconds']:.0f} sets/s)")
    failed = result["nan"] + result["inf"] + result["bad_masks"]
    if args.generator_sets:
        gen = fuzz_generator(args.generator_sets, args.seed)
        print(f"generator (width 0.0625, training=True, gradient of every weight): {gen['tried']} sets tried in "
              f"{gen['batches']} batches, {gen['bad_images']} generated images with NaN/Inf, "
              f"{gen['bad_gradient_batches']} batches with a NaN/Inf weight gradient; {gen['seconds']:.1f} s")
        failed += gen["bad_images"] + gen["bad_gradient_batches"]
    return 1 if failed and not args.no_guard else 0
