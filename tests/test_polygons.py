"""dgan_tf.geometry.polygons: scikit-image 0.13.1's crossing rule, once for keras.ops and numpy, both scan axes."""

import numpy as np
from keras import ops

import skimage_0_13
from dgan_tf.geometry.polygons import crossing_ranges

SHAPE = (18, 14)


def _rectangles(rng, count):
    """Rectangles around random segments (the limbs' shape), half of them with corners on integer pixels, a few
    degenerate (zero width), as (count, 4) row and column corners."""
    start = rng.uniform(-3, 20, (count, 2))
    end = rng.uniform(-3, 20, (count, 2))
    normal = (end - start)[:, ::-1] * np.array([-1.0, 1.0])
    normal *= rng.uniform(0, 0.4, (count, 1)) * (rng.uniform(size=(count, 1)) > 0.1)
    corners = np.stack([start + normal, start - normal, end - normal, end + normal], axis=1)  # (count, 4, 2)
    corners[::2] = np.round(corners[::2])  # vertices and edges on pixel centres: where the rules differ
    return corners[..., 0], corners[..., 1]


def _inside(low, high, positions):
    """Ranges (count, N scan lines) -> (count, N, positions) inside."""
    return (positions >= low[..., None]) & (positions < high[..., None])


def test_ranges_are_skimage_0_13s_point_in_polygon_along_either_axis():
    """Scanning rows is draw.polygon's test (x = column), scanning columns grid_points_in_poly's (x = row)."""
    rows, cols = _rectangles(np.random.default_rng(0), 60)
    grid_rows, grid_cols = np.arange(SHAPE[0], dtype=np.float64), np.arange(SHAPE[1], dtype=np.float64)
    by_row = _inside(*crossing_ranges(rows, cols, grid_rows, np), grid_cols)  # (60, H, W)
    by_col = _inside(*crossing_ranges(cols, rows, grid_cols, np), grid_rows).transpose(0, 2, 1)  # (60, H, W)
    for k in range(len(rows)):
        draw_polygon = np.array([[skimage_0_13.point_in_polygon(4, cols[k], rows[k], c, r) for c in range(SHAPE[1])]
                                 for r in range(SHAPE[0])], bool)
        grid_points = np.array([[skimage_0_13.point_in_polygon(4, rows[k], cols[k], r, c) for c in range(SHAPE[1])]
                                for r in range(SHAPE[0])], bool)
        np.testing.assert_array_equal(by_row[k], draw_polygon)
        np.testing.assert_array_equal(by_col[k], grid_points)
    assert np.any(by_row != by_col)  # the two scans differ on edge pixels
    assert by_row.sum() > 1000


def test_keras_ops_and_numpy_give_the_same_ranges():
    rows, cols = _rectangles(np.random.default_rng(1), 40)
    positions = np.arange(SHAPE[1], dtype=np.float64)
    expected = crossing_ranges(cols, rows, positions, np)
    batched = crossing_ranges(ops.convert_to_tensor(cols), ops.convert_to_tensor(rows), ops.convert_to_tensor(positions),
                              ops)
    for want, got in zip(expected, batched):
        np.testing.assert_array_equal(ops.convert_to_numpy(got), want)
