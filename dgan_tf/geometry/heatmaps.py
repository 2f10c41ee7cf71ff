"""Pose heatmaps from keypoints, computed on the fly in `keras.ops` (pose-gan pose_utils.py:52-59 at 8693ec4).

Replaces the original's 50-200 GB on-disk heatmap cache: 18 maps, peak 1, zero for a missing joint.

heatmaps="staircase" (default) is what the original trained on. Its code reads
exp(-d^2 / (2 sigma^2)), but it ran under Python 2 on integer keypoints, integer meshgrids and
sigma=6, so the `/` floor-divided: exp(floor(-d^2 / 72)) = exp(-ceil(d^2 / 72)), a staircase with
value 1 on the joint's pixel, e^-1 for 0 < d^2 <= 72, e^-2 up to 144, and so on. Here keypoints
are first rounded to the nearest pixel (half up), then d^2 is the integer squared distance and
the map is exp(-ceil(d^2 / (2 sigma^2))): for the integer keypoints of the annotation CSVs and
sigma = 6 that is the original's integer arithmetic exactly, and float keypoints (e.g. a pose
rescaled from another image size) still give a map of the family the original trained on (peak 1
on one pixel, the same rings) rather than one it never saw. heatmaps="gaussian" is the smooth
exp(-d^2 / (2 sigma^2)) on the unrounded keypoints.
"""

import math

from keras import ops

from dgan_tf.images import ImageSize
from dgan_tf.options import HEATMAPS, check_choice

DEFAULT_SIGMA = 6.0


# ceil() tolerance: a float quotient d^2 / (2 sigma^2) may land an ulp (or, where XLA multiplies by the
# reciprocal, two) above an exact multiple; for integer d^2 and 2 sigma^2 = 72 a quotient that is not an
# integer is at least 1/72 from one, and below exp()'s float32 underflow (step ~104) an ulp is < 1e-5,
# so this tolerance gives the original's integer arithmetic exactly.
_STEP_TOLERANCE = 1e-3


# The staircase's values exp(-k), k = 0, 1, ..., taken in float64 and rounded to float32 as the original stored
# np.exp's float64 result in a float32 array (pose-gan pose_utils.py:53-58 at 8693ec4): exp in float32 is 1 ulp
# off on 8-19% of the values. From step 104 on the float32 value is 0.
UNDERFLOW_STEP = 104
_STEP_VALUES = tuple(math.exp(-k) for k in range(UNDERFLOW_STEP)) + (0.0,)


def _steps(squared_distance, denominator):
    """ceil(d^2 / denominator), robust to the float division's last-bit error (see _STEP_TOLERANCE)."""
    return ops.ceil(squared_distance / denominator - _STEP_TOLERANCE)


def pose_heatmaps(keypoints_yx, image_size, sigma=DEFAULT_SIGMA, heatmaps="staircase"):
    """Keypoints (B, 18, 2) in (y, x), -1 missing -> heatmaps (B, H, W, 18) float32 in [0, 1].

    heatmaps: "staircase" exp(-ceil(d^2 / (2 sigma^2))) on keypoints rounded to the nearest pixel, the
    original's (see the module docstring), or "gaussian" exp(-d^2 / (2 sigma^2));
    d^2 = (r - y)^2 + (c - x)^2. All zeros for a missing joint.
    """
    check_choice("heatmaps", heatmaps, HEATMAPS)
    height, width = ImageSize.of(image_size)
    keypoints_yx = ops.cast(keypoints_yx, "float32")  # (B, J, 2)
    y = keypoints_yx[:, None, None, :, 0]  # (B, 1, 1, J)
    x = keypoints_yx[:, None, None, :, 1]  # (B, 1, 1, J)
    visible = ops.cast(ops.logical_and(ops.not_equal(y, -1.0), ops.not_equal(x, -1.0)), "float32")
    rows = ops.arange(height, dtype="float32")[None, :, None, None]  # (1, H, 1, 1)
    cols = ops.arange(width, dtype="float32")[None, None, :, None]  # (1, 1, W, 1)
    denominator = 2.0 * float(sigma) * float(sigma)
    if heatmaps == "gaussian":
        # Separable: an outer product of a row and a column profile.
        row_profile = ops.exp(-ops.square(rows - y) / denominator) * visible  # (B, H, 1, J)
        return row_profile * ops.exp(-ops.square(cols - x) / denominator)  # (B, H, W, J)
    # The nearest pixel (the original's keypoints are ints); a missing joint moves far away, where exp
    # underflows to exactly 0, which spares a multiplication over the whole map.
    far = -1e4
    y = ops.where(visible > 0, ops.floor(y + 0.5), far)  # (B, 1, 1, J)
    x = ops.where(visible > 0, ops.floor(x + 0.5), far)  # (B, 1, 1, J)
    # Not separable: the ceil acts on the sum. (B, H, W, J) float32 is small (75 MB at 16x256x256).
    squared_distance = ops.square(rows - y) + ops.square(cols - x)  # (B, H, W, J)
    steps = _steps(squared_distance, denominator)  # (B, H, W, J), integers >= 0
    steps = ops.where(steps < UNDERFLOW_STEP, steps, UNDERFLOW_STEP)  # also a NaN keypoint's, so the index is valid
    return ops.take(ops.convert_to_tensor(_STEP_VALUES, dtype="float32"), ops.cast(steps, "int32"))
