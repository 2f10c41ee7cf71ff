"""Part masks and part affine transforms from two keypoint sets (pose-gan pose_transform.py:101-265 at 8693ec4).

Batched re-implementation of the original's per-pair numpy/scikit-image geometry in `keras.ops`,
so that it runs in tf.data, under XLA and under JAX jit. Keypoints are (B, 18, 2) in (y, x);
-1 marks a missing joint. Inside, points are (x, y) like the original.
"""

import keras
from keras import ops

from dgan_tf.geometry.keypoints import HEAD_JOINTS, L_HIP, L_SHOULDER, LIMBS, NUM_JOINTS, NUM_PARTS, R_HIP, R_SHOULDER
from dgan_tf.geometry.polygons import crossing_ranges
from dgan_tf.images import ImageSize

NO_POINT_SHIFT = 1000.0
HEAD_RADIUS_FACTOR = 0.4
LIMB_HALF_WIDTH_FACTOR = 0.2
LIMB_START_EXTENSION = 0.1
# End extensions per limb part 2..9: the masks use 0.5 for lower limbs and forearms, the affines
# 0.3 (an original quirk: pose-gan pose_transform.py:154-164 for the masks, 253-263 for the affines, at 8693ec4).
MASK_END_EXTENSIONS = (0.1, 0.1, 0.5, 0.5, 0.1, 0.1, 0.5, 0.5)
AFFINE_END_EXTENSIONS = (0.1, 0.1, 0.3, 0.3, 0.1, 0.1, 0.3, 0.3)
# Torso fit point order of the original: Rhip, Lhip, Lsho, Rsho.
TORSO_FIT_JOINTS = (R_HIP, L_HIP, L_SHOULDER, R_SHOULDER)
MAX_FIT_POINTS = len(HEAD_JOINTS) + 2  # head points plus both shoulders
# A fit is rejected (no_point) when the homogeneous entry of its singular vector is below this
# (the normalised affine would exceed 1e4; scikit-image fails at 1e-8) or when its linear part's
# determinant is below MIN_DETERMINANT (the original's only check: np.linalg.inv raises), or when
# the points cannot be normalised (RMS spread below 1e-4 px).
MIN_HOMOGENEOUS = 1e-4
MIN_DETERMINANT = 1e-6
MIN_MEAN_SQUARE = 1e-8

_LIMB_STARTS = tuple(limb[1] for limb in LIMBS)
_LIMB_ENDS = tuple(limb[2] for limb in LIMBS)
_LIMB_MIRRORS = tuple(limb[3] - 2 for limb in LIMBS)  # index of the mirrored limb among 0..7


def _geometry_dtype():
    """float64 where the backend computes in it, else float32.

    The total least squares fit of nearly collinear torso points amplifies rounding: in float32
    about 1 fit in 1,000 on real pairs differs from scikit-image's float64 by more than 1e-3.
    """
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.jax_enable_x64 else "float32"
    return "float64"


def _check_keypoints(keypoints_yx, name):
    shape = tuple(keypoints_yx.shape)
    if len(shape) != 3 or shape[1] != NUM_JOINTS or shape[2] != 2:
        raise ValueError(f"`{name}` must have shape (batch, {NUM_JOINTS}, 2) in (y, x). Received: {name}.shape={shape}")


def _safe_divide(numerator, denominator, valid):
    """numerator / denominator where valid, 0 elsewhere, with no Inf/NaN in values or gradients."""
    safe = ops.where(valid, denominator, ops.ones_like(denominator))
    return ops.where(valid, numerator / safe, ops.zeros_like(numerator))


def _split_keypoints(keypoints_yx, dtype="float32"):
    """(B, 18, 2) (y, x) -> x (B, 18), y (B, 18) of `dtype` and visible (B, 18) bool."""
    keypoints_yx = ops.stop_gradient(ops.cast(keypoints_yx, dtype))
    y = keypoints_yx[..., 0]
    x = keypoints_yx[..., 1]
    visible = ops.logical_and(ops.not_equal(y, -1.0), ops.not_equal(x, -1.0))
    return x, y, visible


def _torso_mean_square(x, y, visible):
    """Mean of |Rhip - Rsho|^2 and |Lhip - Lsho|^2 over the sides with both joints visible (B,).

    The original requires all four joints; with one side missing the other side alone is used,
    with both missing the scale is 0 (empty head and limb masks, degenerate limb fits).
    """
    total = ops.zeros_like(x[:, 0])
    count = ops.zeros_like(x[:, 0])
    for hip, shoulder in ((R_HIP, R_SHOULDER), (L_HIP, L_SHOULDER)):
        both = ops.cast(ops.logical_and(visible[:, hip], visible[:, shoulder]), x.dtype)
        square = ops.square(x[:, hip] - x[:, shoulder]) + ops.square(y[:, hip] - y[:, shoulder])
        total = total + both * square
        count = count + both
    return _safe_divide(total, count, count > 0)


def _torso_scale(x, y, visible):
    """Torso scale st (B,)."""
    return ops.sqrt(_torso_mean_square(x, y, visible))


def _limb_corners(x, y, scale, end_extensions):
    """The original's estimate_polygon for all 8 limbs: corner x, y each (B, 8, 4).

    A' = A + 0.1 (A - B), B' = B + inc (B - A'); rectangle of half width 0.2 st around A'B'
    (corners A' + h n, A' - h n, B' - h n, B' + h n); the square A' +- 1, B' -+ 1 if A' == B'.
    """
    ax, ay = ops.take(x, _LIMB_STARTS, axis=1), ops.take(y, _LIMB_STARTS, axis=1)  # (B, 8)
    bx, by = ops.take(x, _LIMB_ENDS, axis=1), ops.take(y, _LIMB_ENDS, axis=1)  # (B, 8)
    inc = ops.convert_to_tensor(end_extensions, dtype=x.dtype)[None, :]  # (1, 8)
    ax, ay = ax + (ax - bx) * LIMB_START_EXTENSION, ay + (ay - by) * LIMB_START_EXTENSION
    bx, by = bx + (bx - ax) * inc, by + (by - ay) * inc
    nx, ny = -(ay - by), ax - bx  # normal of A' - B'
    length = ops.sqrt(nx * nx + ny * ny)
    degenerate = ops.equal(length, 0.0)
    half = (scale * LIMB_HALF_WIDTH_FACTOR)[:, None]  # (B, 1)
    ox = ops.where(degenerate, 1.0, half * _safe_divide(nx, length, ~degenerate))
    oy = ops.where(degenerate, 1.0, half * _safe_divide(ny, length, ~degenerate))
    corners_x = ops.stack([ax + ox, ax - ox, bx - ox, bx + ox], axis=-1)  # (B, 8, 4)
    corners_y = ops.stack([ay + oy, ay - oy, by - oy, by + oy], axis=-1)  # (B, 8, 4)
    return corners_x, corners_y


def _limb_visible(visible):
    """Both joints of each limb visible (B, 8)."""
    return ops.logical_and(ops.take(visible, _LIMB_STARTS, axis=1), ops.take(visible, _LIMB_ENDS, axis=1))


def _head_radius(mean_square):
    """r = int(0.4 * st) computed exactly from st^2 (B,): the largest k with 25 k^2 <= 4 st^2."""
    radius = ops.floor(HEAD_RADIUS_FACTOR * ops.sqrt(mean_square))
    radius = radius + ops.cast(25.0 * ops.square(radius + 1.0) <= 4.0 * mean_square, mean_square.dtype)
    radius = radius - ops.cast(25.0 * ops.square(radius) > 4.0 * mean_square, mean_square.dtype)
    return ops.maximum(radius, 0.0)


def _head_row_ranges(x, y, visible, mean_square, width):
    """Head square as per-column row ranges [low, high) (B, W) each.

    Square of half side r = int(0.4 st) around the truncated mean (cy, cx) of the visible head
    points: rows cy - r <= row < cy + r, columns cx - r <= col < cx + r; empty without head point.
    """
    head_x, head_y = ops.take(x, HEAD_JOINTS, axis=1), ops.take(y, HEAD_JOINTS, axis=1)  # (B, 5)
    head_visible = ops.cast(ops.take(visible, HEAD_JOINTS, axis=1), x.dtype)  # (B, 5)
    count = ops.sum(head_visible, axis=1)  # (B,)
    present = count > 0
    center_x = ops.trunc(_safe_divide(ops.sum(head_x * head_visible, axis=1), count, present))
    center_y = ops.trunc(_safe_divide(ops.sum(head_y * head_visible, axis=1), count, present))
    radius = _head_radius(mean_square)
    cols = ops.arange(width, dtype=x.dtype)[None, :]  # (1, W)
    in_cols = ops.logical_and(cols >= (center_x - radius)[:, None], cols < (center_x + radius)[:, None])  # (B, W)
    in_cols = ops.logical_and(in_cols, present[:, None])
    low = ops.where(in_cols, (center_y - radius)[:, None], 0.0)
    high = ops.where(in_cols, (center_y + radius)[:, None], 0.0)
    return low, high


def _rasterise_row_ranges(low, high, height):
    """Per-column row ranges [low, high) (B, P, W) -> masks (B, P, H, W) float32.

    Rows are integers, so r >= low <=> r >= ceil(low): the thresholds are rounded in the
    geometry dtype (float64 where available) and the one full-size test runs in float32.
    """
    low = ops.cast(ops.ceil(ops.clip(low, -1.0, height + 1.0)), "float32")[..., None, :]  # (B, P, 1, W)
    high = ops.cast(ops.ceil(ops.clip(high, -1.0, height + 1.0)), "float32")[..., None, :]  # (B, P, 1, W)
    rows = ops.arange(height, dtype="float32")[:, None]  # (H, 1)
    return ops.cast(ops.logical_and(rows >= low, rows < high), "float32")  # (B, P, H, W)


def part_masks(keypoints_target_yx, image_size):
    """Target keypoints (B, 18, 2) in (y, x) -> part masks (B, 10, H, W) float32 in {0, 1}.

    Drawn in the target pose at full resolution: torso = whole image, head = square, limbs =
    rectangles (pose-gan pose_transform.py:125-166 at 8693ec4, pose_masks). A part whose joints are missing is
    empty. Every part is a range of rows per column, so the full-size masks are written in one pass.
    """
    _check_keypoints(keypoints_target_yx, "keypoints_target_yx")
    height, width = ImageSize.of(image_size)
    x, y, visible = _split_keypoints(keypoints_target_yx, _geometry_dtype())
    mean_square = _torso_mean_square(x, y, visible)
    column = ops.zeros_like(x[:, :1]) + ops.zeros((1, width), dtype=x.dtype)  # (B, W)
    torso_low, torso_high = column, column + height
    head_low, head_high = _head_row_ranges(x, y, visible, mean_square, width)  # (B, W)
    corners_x, corners_y = _limb_corners(x, y, ops.sqrt(mean_square), MASK_END_EXTENSIONS)  # (B, 8, 4)
    # scikit-image 0.13's grid_points_in_poly scans columns: rows low <= r < high of each column are inside.
    limb_low, limb_high = crossing_ranges(corners_x, corners_y, ops.arange(width, dtype=x.dtype), ops)  # (B, 8, W)
    limb_visible = _limb_visible(visible)[..., None]  # (B, 8, 1)
    limb_low = ops.where(limb_visible, limb_low, 0.0)
    limb_high = ops.where(limb_visible, limb_high, 0.0)
    low = ops.concatenate([torso_low[:, None], head_low[:, None], limb_low], axis=1)  # (B, 10, W)
    high = ops.concatenate([torso_high[:, None], head_high[:, None], limb_high], axis=1)  # (B, 10, W)
    return _rasterise_row_ranges(low, high, height)  # (B, 10, H, W)


def _normalisation(points, weights):
    """Hartley normalisation (centroid 0, RMS distance sqrt 2): centroid (..., 2), scale (...,), ok (...,)."""
    count = ops.sum(weights, axis=-1)  # (...,)
    has_points = count > 0
    centroid = _safe_divide(ops.sum(points * weights[..., None], axis=-2), count[..., None], has_points[..., None])
    centered = (points - centroid[..., None, :]) * weights[..., None]
    mean_square = _safe_divide(ops.sum(ops.square(centered), axis=(-2, -1)), 2.0 * count, has_points)
    ok = mean_square > MIN_MEAN_SQUARE
    scale = _safe_divide(ops.ones_like(mean_square), ops.sqrt(ops.where(ok, mean_square, 1.0)), ok)
    return centroid, scale, ok


def _fit_affine_tls(src, dst, weights):
    """Total least squares affine src -> dst as scikit-image's AffineTransform estimate does.

    src, dst (..., N, 2) in (x, y), weights (..., N) in {0, 1}. Returns params (..., 2, 3) and
    ok (...,): False where the fit is degenerate or its linear part is singular.
    """
    src_centroid, src_scale, src_ok = _normalisation(src, weights)
    dst_centroid, dst_scale, dst_ok = _normalisation(dst, weights)
    src_n = (src - src_centroid[..., None, :]) * src_scale[..., None, None]  # (..., N, 2)
    dst_n = (dst - dst_centroid[..., None, :]) * dst_scale[..., None, None]  # (..., N, 2)
    root_w = ops.sqrt(weights)[..., None]  # (..., N, 1)
    ones = ops.ones_like(src_n[..., :1])
    zeros = ops.zeros_like(src_n)
    zero = ops.zeros_like(ones)
    # Rows (x, y, 1, 0, 0, 0, X) and (0, 0, 0, x, y, 1, Y) per correspondence.
    rows_x = ops.concatenate([src_n, ones, zeros, zero, dst_n[..., :1]], axis=-1)  # (..., N, 7)
    rows_y = ops.concatenate([zeros, zero, src_n, ones, dst_n[..., 1:]], axis=-1)  # (..., N, 7)
    system = ops.concatenate([rows_x * root_w, rows_y * root_w], axis=-2)  # (..., 2N, 7)
    _, _, vh = ops.svd(system, full_matrices=False)  # vh (..., 7, 7)
    v = vh[..., -1, :]  # (..., 7) right singular vector of the smallest singular value
    homogeneous = v[..., 6]
    fit_ok = ops.abs(homogeneous) > MIN_HOMOGENEOUS
    h = -_safe_divide(v[..., :6], homogeneous[..., None], fit_ok[..., None])  # (..., 6)
    h = ops.reshape(h, ops.shape(h)[:-1] + (2, 3))  # (..., 2, 3) normalised
    # De-normalise: x_dst = c_dst + (L (s_src (x - c_src)) + t) / s_dst.
    ratio = _safe_divide(src_scale, dst_scale, dst_ok)  # (...,)
    linear = h[..., :2] * ratio[..., None, None]  # (..., 2, 2)
    translation = (
        dst_centroid
        - ops.sum(linear * src_centroid[..., None, :], axis=-1)
        + _safe_divide(h[..., 2], dst_scale[..., None], dst_ok[..., None])
    )  # (..., 2)
    params = ops.concatenate([linear, translation[..., None]], axis=-1)  # (..., 2, 3)
    determinant = linear[..., 0, 0] * linear[..., 1, 1] - linear[..., 0, 1] * linear[..., 1, 0]
    finite = ops.all(ops.isfinite(ops.reshape(params, ops.shape(params)[:-2] + (6,))), axis=-1)
    enough = ops.sum(ops.cast(weights > 0, weights.dtype), axis=-1) >= 3.0
    ok = src_ok & dst_ok & fit_ok & enough & finite & (ops.abs(determinant) > MIN_DETERMINANT)
    params = ops.where(ok[..., None, None], params, ops.zeros_like(params))
    return params, ok


def _no_point_like(params):
    """The original's no_point transform (identity, +1000 px in x and y) broadcast like params (..., 2, 3)."""
    no_point = ops.convert_to_tensor([[1.0, 0.0, NO_POINT_SHIFT], [0.0, 1.0, NO_POINT_SHIFT]], dtype=params.dtype)
    return ops.zeros_like(params) + no_point


def _gather_points(x, y, joints):
    """(B, 18) x, y -> points (B, len(joints), 2) in (x, y)."""
    return ops.stack([ops.take(x, joints, axis=1), ops.take(y, joints, axis=1)], axis=-1)


def _pad_points(points, width):
    """Pad (B, ..., N, K) along N with zeros to MAX_FIT_POINTS (padded points get weight 0)."""
    missing = MAX_FIT_POINTS - points.shape[-2]
    filler = ops.zeros_like(points[..., :1, :]) + ops.zeros((missing, width), dtype=points.dtype)
    return ops.concatenate([points, filler], axis=-2)


def _joint_fit_points(x1, y1, x2, y2, shared, joints):
    """Fit points of a joint-based part: target (B, 7, 2), source (B, 7, 2), weights (B, 7)."""
    target = _pad_points(_gather_points(x2, y2, joints), 2)
    source = _pad_points(_gather_points(x1, y1, joints), 2)
    weights = _pad_points(ops.take(shared, joints, axis=1)[..., None], 1)[..., 0]
    return target, source, weights


def part_affines(keypoints_source_yx, keypoints_target_yx):
    """Source and target keypoints (B, 18, 2) in (y, x) -> affines (B, 10, 8) float32, target -> source.

    Full-resolution pixels, [a0 a1 a2 b0 b1 b2 0 0] with x_in = a0 x + a1 y + a2, y_in = b0 x + b1 y + b2; parts
    without a valid fit get no_point (identity, +1000 px), see pose-gan pose_transform.py:201-210 at 8693ec4.
    """
    _check_keypoints(keypoints_source_yx, "keypoints_source_yx")
    _check_keypoints(keypoints_target_yx, "keypoints_target_yx")
    dtype = _geometry_dtype()
    x1, y1, visible1 = _split_keypoints(keypoints_source_yx, dtype)
    x2, y2, visible2 = _split_keypoints(keypoints_target_yx, dtype)
    shared = ops.cast(ops.logical_and(visible1, visible2), dtype)  # (B, 18)

    # Torso: the 4 torso joints; head: shared head points plus both shoulders.
    torso_src, torso_dst, torso_w = _joint_fit_points(x1, y1, x2, y2, shared, TORSO_FIT_JOINTS)
    head_src, head_dst, head_w = _joint_fit_points(x1, y1, x2, y2, shared, tuple(HEAD_JOINTS) + (L_SHOULDER, R_SHOULDER))
    head_valid = ops.sum(ops.take(shared, HEAD_JOINTS, axis=1), axis=1) > 0  # (B,)

    # Limbs: target rectangle (st2) -> source rectangle (st1), or the mirrored source limb.
    st1, st2 = _torso_scale(x1, y1, visible1), _torso_scale(x2, y2, visible2)
    target_x, target_y = _limb_corners(x2, y2, st2, AFFINE_END_EXTENSIONS)  # (B, 8, 4)
    source_x, source_y = _limb_corners(x1, y1, st1, AFFINE_END_EXTENSIONS)  # (B, 8, 4)
    source_own = _limb_visible(visible1)  # (B, 8)
    source_mirror = ops.take(source_own, _LIMB_MIRRORS, axis=1)  # (B, 8)
    use_own = source_own[..., None]
    source_x = ops.where(use_own, source_x, ops.take(source_x, _LIMB_MIRRORS, axis=1))
    source_y = ops.where(use_own, source_y, ops.take(source_y, _LIMB_MIRRORS, axis=1))
    limb_valid = ops.logical_and(_limb_visible(visible2), ops.logical_or(source_own, source_mirror))  # (B, 8)

    limb_src = ops.stack([target_x, target_y], axis=-1)  # (B, 8, 4, 2)
    limb_dst = ops.stack([source_x, source_y], axis=-1)  # (B, 8, 4, 2)
    limb_weights = ops.ones_like(target_x)  # (B, 8, 4)
    limb_src, limb_dst = _pad_points(limb_src, 2), _pad_points(limb_dst, 2)  # (B, 8, 7, 2)
    limb_weights = _pad_points(limb_weights[..., None], 1)[..., 0]  # (B, 8, 7)

    src = ops.concatenate([torso_src[:, None], head_src[:, None], limb_src], axis=1)  # (B, 10, 7, 2)
    dst = ops.concatenate([torso_dst[:, None], head_dst[:, None], limb_dst], axis=1)  # (B, 10, 7, 2)
    weights = ops.concatenate([torso_w[:, None], head_w[:, None], limb_weights], axis=1)  # (B, 10, 7)
    valid = ops.concatenate([ops.ones_like(head_valid[:, None]), head_valid[:, None], limb_valid], axis=1)  # (B, 10)

    params, ok = _fit_affine_tls(src, dst, weights)  # (B, 10, 2, 3), (B, 10)
    keep = ops.logical_and(valid, ok)[..., None, None]
    params = ops.where(keep, params, _no_point_like(params))
    flat = ops.reshape(params, (-1, NUM_PARTS, 6))
    flat = ops.cast(flat, "float32")
    return ops.concatenate([flat, ops.zeros_like(flat[..., :2])], axis=-1)  # (B, 10, 8)
