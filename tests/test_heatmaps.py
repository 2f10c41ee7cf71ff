"""Pose heatmaps: the original's Python 2 staircase and the smooth Gaussian, batched, in tf.data and XLA.

The original: pose-gan pose_utils.py:52-59 at 8693ec4 (cords_to_map).
"""

import json

import numpy as np
import pytest

from dgan_tf.geometry.heatmaps import pose_heatmaps
from original_pose_gan.inputs import cords_to_map as original_cords_to_map


def gaussian_maps(keypoints_yx, image_size, sigma=6.0):
    """The formula as written, in true division: one smooth Gaussian per visible joint."""
    height, width = image_size
    rows, cols = np.mgrid[0:height, 0:width]
    maps = np.zeros((height, width, len(keypoints_yx)), np.float32)
    for j, (y, x) in enumerate(keypoints_yx):
        if y == -1 or x == -1:
            continue
        maps[..., j] = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma**2))
    return maps


def _random_keypoints(rng, image_size, batch=3):
    keypoints = np.stack([rng.integers(0, s, size=(batch, 18)) for s in image_size], axis=-1)  # (B, 18, 2)
    keypoints[0, 4] = -1
    keypoints[1, :] = -1  # a person with no joint at all
    keypoints[2, 7, 1] = -1  # one coordinate missing counts as missing
    return keypoints


@pytest.mark.parametrize("image_size", [(128, 64), (256, 256)])
def test_staircase_equals_the_original_under_python_2(image_size, rng):
    keypoints = _random_keypoints(rng, image_size)
    keypoints[0, 0] = (5, 0)  # a joint on the border
    maps = np.asarray(pose_heatmaps(keypoints.astype(np.float32), image_size))  # default: staircase
    assert maps.shape == (3,) + tuple(image_size) + (18,) and maps.dtype == np.float32
    for sample, kp in zip(maps, keypoints):
        np.testing.assert_array_equal(sample, original_cords_to_map(kp, image_size))  # bit for bit
    assert np.all(maps[1] == 0) and np.all(maps[0, ..., 4] == 0) and np.all(maps[2, ..., 7] == 0)
    y, x = keypoints[0, 1]
    assert maps[0, y, x, 1] == 1.0 and maps.max() <= 1.0 and maps.min() >= 0.0
    exponents = np.log(maps[maps > 1e-30].astype(np.float64))
    np.testing.assert_allclose(exponents, np.round(exponents), atol=1e-5)  # only the values exp(-n)


def test_staircase_steps_fall_on_multiples_of_72():
    keypoints = np.full((1, 18, 2), -1, np.float32)
    keypoints[0, 0] = (0, 0)
    row = np.asarray(pose_heatmaps(keypoints, (1, 40)))[0, 0, :, 0]  # d^2 = column^2
    columns = np.arange(40)
    np.testing.assert_allclose(row, np.exp(-np.ceil(columns**2 / 72.0)), rtol=1e-6)
    # d^2 = 72 exactly (6^2 + 6^2) is still on step 1; 73 is on step 2.
    grid = np.asarray(pose_heatmaps(keypoints, (10, 10)))[0, ..., 0]
    assert grid[6, 6] == pytest.approx(np.exp(-1.0)) and grid[8, 3] == pytest.approx(np.exp(-2.0))


def test_staircase_rounds_float_keypoints_to_the_nearest_pixel(rng):
    keypoints = rng.uniform(0, 60, size=(2, 18, 2)).astype(np.float32)
    keypoints[0, 3] = -1.0
    keypoints[1, 0] = (10.5, 20.49)  # halves round up
    maps = np.asarray(pose_heatmaps(keypoints, (64, 64)))
    rounded = np.floor(keypoints + 0.5).astype(np.int64)
    rounded[0, 3] = -1
    for sample, kp in zip(maps, rounded):
        np.testing.assert_array_equal(sample, original_cords_to_map(kp, (64, 64)))
    assert maps[1, 11, 20, 0] == 1.0


def test_steps_are_the_integer_ceiling_for_every_squared_distance_eager_and_xla():
    import tensorflow as tf

    from dgan_tf.geometry.heatmaps import _steps

    squared = np.arange(2 * 256**2 + 1)  # every integer d^2 of a 256x256 image
    expected = -(-squared // 72)  # integer ceil, as Python 2 computed floor(-d^2 / 72)
    values = tf.constant(squared.astype(np.float32))
    np.testing.assert_array_equal(np.asarray(_steps(values, 72.0)), expected)
    compiled = tf.function(lambda v: _steps(v, 72.0), jit_compile=True)
    np.testing.assert_array_equal(compiled(values).numpy(), expected)


def test_step_values_are_float64_exp_rounded_to_float32_as_the_original_stored_them():
    """exp(-k) in float32 is 1 ulp off for some k; the original took np.exp in float64 and stored float32."""
    from dgan_tf.geometry.heatmaps import _STEP_VALUES, UNDERFLOW_STEP

    steps = np.arange(UNDERFLOW_STEP + 1, dtype=np.float64)
    expected = np.exp(-steps).astype(np.float32)
    np.testing.assert_array_equal(np.array(_STEP_VALUES, dtype=np.float32), expected)
    assert expected[-1] == 0 and expected[-2] > 0  # step 104 is the first whose float32 value is 0
    assert np.any(np.exp(-steps.astype(np.float32)) != expected)  # what a float32 exp would have given
    keypoints = np.full((1, 18, 2), -1, np.float32)
    keypoints[0, 0] = (0, 0)
    row = np.asarray(pose_heatmaps(keypoints, (1, 120)))[0, 0, :, 0]  # d^2 = column^2, steps up to 198
    np.testing.assert_array_equal(row, np.exp(-np.ceil(np.arange(120) ** 2 / 72.0)).astype(np.float32))


@pytest.mark.parametrize("image_size", [(128, 64), (256, 256)])
def test_gaussian_equals_the_formula(image_size, rng):
    keypoints = _random_keypoints(rng, image_size).astype(np.float32) + rng.uniform(-0.5, 0.5, (3, 18, 2))
    keypoints[0, 4], keypoints[1, :], keypoints[2, 7, 1] = -1, -1, -1
    maps = np.asarray(pose_heatmaps(keypoints, image_size, heatmaps="gaussian"))
    for sample, kp in zip(maps, keypoints):
        np.testing.assert_allclose(sample, gaussian_maps(kp, image_size), atol=1e-6)


def test_staircase_against_gaussian_on_a_real_market_pose(annotations_real):
    """Measured: the largest per-pixel difference between the two on a real Market pose is 0.618."""
    import pandas as pd

    frame = pd.read_csv(annotations_real / "market-annotation-train.csv", sep=":").head(200)
    keypoints = np.stack([np.stack([json.loads(y), json.loads(x)], -1)
                          for y, x in zip(frame["keypoints_y"], frame["keypoints_x"])])  # (N, 18, 2) int
    staircase = np.asarray(pose_heatmaps(keypoints.astype(np.float32), (128, 64)))
    gaussian = np.asarray(pose_heatmaps(keypoints.astype(np.float32), (128, 64), heatmaps="gaussian"))
    np.testing.assert_array_equal(staircase[3], original_cords_to_map(keypoints[3], (128, 64)))
    assert np.abs(staircase - gaussian).max() == pytest.approx(0.618, abs=1e-3)


def test_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="Received: heatmaps='smooth'"):
        pose_heatmaps(np.zeros((1, 18, 2), np.float32), (8, 8), heatmaps="smooth")


@pytest.mark.parametrize("heatmaps", ["staircase", "gaussian"])
def test_works_inside_tf_data_and_xla(heatmaps, rng):
    import tensorflow as tf

    keypoints = _random_keypoints(rng, (64, 32)).astype(np.float32)
    expected = np.asarray(pose_heatmaps(keypoints, (64, 32), heatmaps=heatmaps))
    dataset = tf.data.Dataset.from_tensor_slices(keypoints).batch(3).map(
        lambda k: pose_heatmaps(k, (64, 32), heatmaps=heatmaps))
    np.testing.assert_allclose(next(iter(dataset)).numpy(), expected, atol=1e-6)
    compiled = tf.function(lambda k: pose_heatmaps(k, (64, 32), heatmaps=heatmaps), jit_compile=True)
    np.testing.assert_allclose(compiled(keypoints).numpy(), expected, atol=1e-6)
    if heatmaps == "staircase":
        np.testing.assert_array_equal(compiled(keypoints).numpy(), expected)
        np.testing.assert_array_equal(expected[0], original_cords_to_map(keypoints[0].astype(np.int64), (64, 32)))
