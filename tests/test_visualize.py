"""uint8 conversions of the original (SPEC §7): truncation of generated images, the real images' float64 round trip."""

import numpy as np

from dgan_tf.visualize import original_round_trip, real_to_uint8, sample_grid, stored_pixels, to_uint8


def original_deprocess(image):
    """test.py's deprocess_image, verbatim: numpy keeps the array's precision."""
    return (255 * ((image + 1) / 2.0)).astype(np.uint8)


def test_to_uint8_truncates_where_rounding_would_not():
    values = np.array([100.7, 100.2, 254.99, 0.6, 255.0, 0.0], np.float64)  # 255 (x + 1) / 2
    image = (values / 255.0 * 2.0 - 1.0).astype(np.float32)
    np.testing.assert_array_equal(to_uint8(image), [100, 100, 254, 0, 255, 0])
    assert np.any(to_uint8(image) != np.round(255 * (image + 1) / 2).astype(np.uint8))


def test_to_uint8_equals_the_originals_conversion_of_a_float32_output(rng):
    generated = np.tanh(rng.normal(size=(2, 16, 8, 3)) * 2).astype(np.float32)
    generated[0, 0, 0] = (-1.0, 1.0, 0.0)
    np.testing.assert_array_equal(to_uint8(generated), original_deprocess(generated))


def test_real_images_come_back_as_the_originals_float64_round_trip():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16, 1)
    pipeline = ((pixels.astype(np.float32) / 255.0 - 0.5) * 2.0).astype(np.float32)  # data.pipeline's scaling
    np.testing.assert_array_equal(stored_pixels(pipeline), pixels)
    original = original_deprocess((pixels.astype(np.float64) / 255 - 0.5) * 2)  # PoseHMDataset holds float64
    np.testing.assert_array_equal(real_to_uint8(pipeline), original)
    np.testing.assert_array_equal(original_round_trip(pixels), original)
    lowered = np.flatnonzero(original.ravel() != pixels.ravel())
    assert lowered.tolist() == [1, 2, 5, 9, 10, 13, 17, 18, 21, 25, 26, 29, 33, 34, 41, 42, 49, 50, 57, 58]
    assert np.count_nonzero(to_uint8(pipeline) != pixels) == 63  # why float32 truncation is not used for them


def test_sample_grid_layout(rng):
    images = np.tanh(rng.normal(size=(2, 8, 4, 3))).astype(np.float32)
    keypoints = np.full((2, 18, 2), -1.0, np.float32)
    grid = sample_grid(images, keypoints, images, images)
    assert grid.shape == (16, 16, 3) and grid.dtype == np.uint8
    np.testing.assert_array_equal(grid[:8, 8:12], to_uint8(images[0]))
    np.testing.assert_array_equal(grid[:8, :4], real_to_uint8(images[0]))
