"""Pictures for people: the sample grid shows real images as stored and generated ones as the export serves them."""

import numpy as np

from dgan_tf.images import serving_uint8, stored_pixels
from dgan_tf.visualize import sample_grid


def test_sample_grid_layout(rng):
    images = np.tanh(rng.normal(size=(2, 8, 4, 3))).astype(np.float32)
    keypoints = np.full((2, 18, 2), -1.0, np.float32)
    grid = sample_grid(images, keypoints, images, images)
    assert grid.shape == (16, 16, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:8, 8:12], serving_uint8(images[0]))
    np.testing.assert_array_equal(grid[:8, :4], stored_pixels(images[0]))
    np.testing.assert_array_equal(grid[8:, 12:], stored_pixels(images[1]))
    assert np.any(grid[:8, 8:12] != (255 * ((images[0] + 1) / 2.0)).astype(np.uint8))  # rounded, not truncated
