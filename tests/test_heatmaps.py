"""Pose heatmaps (SPEC §1): equal to a direct numpy evaluation of the formula, batched, usable in tf.data."""

import numpy as np
import pytest

from dgan_tf.geometry.heatmaps import pose_heatmaps


def numpy_heatmaps(keypoints_yx, image_size, sigma=6.0):
    """The original's cords_to_map, written out: one Gaussian per visible joint, zeros for a missing one."""
    height, width = image_size
    rows, cols = np.mgrid[0:height, 0:width]
    maps = np.zeros((height, width, len(keypoints_yx)), np.float32)
    for j, (y, x) in enumerate(keypoints_yx):
        if y == -1 or x == -1:
            continue
        maps[..., j] = np.exp(-((rows - y) ** 2 + (cols - x) ** 2) / (2 * sigma**2))
    return maps


@pytest.mark.parametrize("image_size", [(128, 64), (256, 256)])
def test_equals_the_formula_on_a_batch(image_size, rng):
    keypoints = np.stack([rng.integers(0, s, size=(3, 18)) for s in image_size], axis=-1)  # (3, 18, 2)
    keypoints[0, 4] = -1
    keypoints[1, :] = -1  # a person with no joint at all
    keypoints[2, 7, 1] = -1  # one coordinate missing counts as missing
    maps = np.asarray(pose_heatmaps(keypoints, image_size))  # (3, H, W, 18)
    assert maps.shape == (3,) + tuple(image_size) + (18,) and maps.dtype == np.float32
    for sample, kp in zip(maps, keypoints):
        np.testing.assert_allclose(sample, numpy_heatmaps(kp, image_size), atol=1e-6)
    assert np.all(maps[1] == 0) and np.all(maps[0, ..., 4] == 0) and np.all(maps[2, ..., 7] == 0)
    y, x = keypoints[0, 0]
    assert maps[0, y, x, 0] == pytest.approx(1.0) and maps.max() <= 1.0 and maps.min() >= 0.0


def test_works_inside_tf_data():
    import tensorflow as tf

    keypoints = np.full((2, 18, 2), -1, np.float32)
    keypoints[:, 1] = (10.0, 20.0)
    dataset = tf.data.Dataset.from_tensor_slices(keypoints).batch(2).map(lambda k: pose_heatmaps(k, (32, 32)))
    maps = next(iter(dataset)).numpy()
    np.testing.assert_allclose(maps[0], numpy_heatmaps(keypoints[0], (32, 32)), atol=1e-6)
