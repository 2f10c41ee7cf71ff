"""Pose heatmaps from keypoints, computed on the fly in `keras.ops` (SPEC §1, [pose_utils.cords_to_map]).

Replaces the original's 50-200 GB on-disk heatmap cache: 18 unnormalised Gaussians, peak 1.
"""

from keras import ops

DEFAULT_SIGMA = 6.0


def pose_heatmaps(keypoints_yx, image_size, sigma=DEFAULT_SIGMA):
    """Keypoints (B, 18, 2) in (y, x), -1 missing -> heatmaps (B, H, W, 18) float32 in [0, 1].

    exp(-((r - y)^2 + (c - x)^2) / (2 sigma^2)) per joint; an all-zero channel for a missing joint.
    The Gaussian is separable, so it is built as an outer product of a row and a column profile.
    """
    height, width = int(image_size[0]), int(image_size[1])
    keypoints_yx = ops.cast(keypoints_yx, "float32")  # (B, J, 2)
    y = keypoints_yx[..., 0]  # (B, J)
    x = keypoints_yx[..., 1]  # (B, J)
    visible = ops.cast(ops.logical_and(ops.not_equal(y, -1.0), ops.not_equal(x, -1.0)), "float32")
    rows = ops.arange(height, dtype="float32")  # (H,)
    cols = ops.arange(width, dtype="float32")  # (W,)
    scale = -1.0 / (2.0 * sigma * sigma)
    row_profile = ops.exp(scale * ops.square(rows[None, None, :] - y[..., None]))  # (B, J, H)
    col_profile = ops.exp(scale * ops.square(cols[None, None, :] - x[..., None]))  # (B, J, W)
    row_profile = row_profile * visible[..., None]
    maps = row_profile[..., :, None] * col_profile[..., None, :]  # (B, J, H, W)
    return ops.transpose(maps, (0, 2, 3, 1))  # (B, H, W, J)
