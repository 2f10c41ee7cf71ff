"""Filled polygons by the crossing rule of scikit-image 0.13, the version the original ran (pose-gan
requirements.txt:8 at 8693ec4): one rule for the part masks (keras.ops, batched) and the evaluation's Ma et al.
masks (numpy).

scikit-image 0.13.1's point_in_polygon (skimage/_shared/geometry.pyx) toggles a point on every edge (i, j = i - 1)
whose half-open span [s_i, s_j) or [s_j, s_i) along one axis (the scan axis) holds the point's coordinate s there
and whose crossing o_i + (o_j - o_i) (s - s_i) / (s_j - s_i) along the other axis lies beyond the point's o. A point
exactly on a left edge is inside, on a right edge outside (later scikit-image counts every edge point in). Its two
callers scan different axes: measure.grid_points_in_poly (the part masks, pose-gan pose_transform.py:152 at
8693ec4) scans columns, draw.polygon (the Ma masks, pose-gan pose_utils.py:132) scans rows.

The rule is written once, for an array namespace `xp` (keras.ops or numpy) given by the caller.
"""

# A scan line that crosses no edge gets the empty range [_NO_CROSSING, -_NO_CROSSING).
_NO_CROSSING = 1e9


def crossing_ranges(scan_vertices, other_vertices, scan_positions, xp):
    """Inside of convex polygons per scan line, as ranges [low, high) along the other axis.

    scan_vertices, other_vertices: (..., V) vertex coordinates along the scan axis and the other axis, in
    drawing order; scan_positions: (N,) scan lines, the same dtype. Returns low, high (..., N): a point (s, o) on
    scan line s is inside when low <= o < high. A convex (or degenerate) polygon has 0 or 2 crossings per scan
    line under the half-open rule, so the toggles of the original reduce to one range. xp: keras.ops or numpy.
    """
    edge_lows, edge_highs = [], []
    for i in range(scan_vertices.shape[-1]):
        j = i - 1 if i else scan_vertices.shape[-1] - 1
        s_i, o_i = scan_vertices[..., i:i + 1], other_vertices[..., i:i + 1]  # (..., 1)
        s_j, o_j = scan_vertices[..., j:j + 1], other_vertices[..., j:j + 1]
        crosses = xp.logical_or(xp.logical_and(s_i <= scan_positions, scan_positions < s_j),
                                xp.logical_and(s_j <= scan_positions, scan_positions < s_i))  # (..., N)
        span = xp.where(crosses, s_j - s_i, xp.ones_like(s_j - s_i))  # never 0 where it crosses
        # The original's order of operations, so that float64 rounds as it did: (o_j - o_i) (s - s_i) / span + o_i.
        crossing = xp.where(crosses, (o_j - o_i) * (scan_positions - s_i) / span, xp.zeros_like(span)) + o_i
        edge_lows.append(xp.where(crosses, crossing, _NO_CROSSING))
        edge_highs.append(xp.where(crosses, crossing, -_NO_CROSSING))
    # Reductions (not chained minimum) so that XLA materialises the ranges instead of fusing
    # the per-line arithmetic into every pixel of the masks.
    low = xp.min(xp.stack(edge_lows, axis=-2), axis=-2)  # (..., N)
    high = xp.max(xp.stack(edge_highs, axis=-2), axis=-2)  # (..., N)
    return low, high
