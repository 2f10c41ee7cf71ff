"""Part warps by gather: one sampling grid per (sample, part), shared by all channels (SPEC §2).

Replaces the original's tf.contrib.image.transform on a 10x tiled feature map. Coordinates follow
ImageProjectiveTransform: the output pixel (x, y) = (column, row) reads the input at
(a0 x + a1 y + a2, b0 x + b1 y + b2); constant 0 outside the input.
"""

from keras import ops

from dgan_tf.options import WARP_SAMPLINGS, check_choice


def _check_features(features):
    if len(features.shape) != 4:
        raise ValueError(f"`features` must have shape (batch, height, width, channels). Received: features.shape={tuple(features.shape)}")
    height, width = features.shape[1], features.shape[2]
    if height is None or width is None:
        raise ValueError(f"`features` needs a static height and width. Received: features.shape={tuple(features.shape)}")
    return int(height), int(width)


def _round_half_away_from_zero(value):
    """std::round, as the TF kernel uses for nearest sampling (keras.ops.round rounds half to even)."""
    return ops.where(value >= 0, ops.floor(value + 0.5), ops.ceil(value - 0.5))


def _source_coordinates(affine, height, width):
    """Affine (B, 8) -> input x, y (B, h*w) float32 for every output pixel in row-major order."""
    affine = ops.stop_gradient(ops.cast(affine, "float32"))
    rows = ops.repeat(ops.arange(height, dtype="float32"), width)  # (h*w,)
    cols = ops.tile(ops.arange(width, dtype="float32"), (height,))  # (h*w,)
    x_in = affine[:, 0:1] * cols + affine[:, 1:2] * rows + affine[:, 2:3]  # (B, h*w)
    y_in = affine[:, 3:4] * cols + affine[:, 4:5] * rows + affine[:, 5:6]  # (B, h*w)
    return x_in, y_in


def _gather_pixels(flat_features, x_index, y_index, height, width):
    """Rows of flat_features (B*h*w, C) at integer pixels (B, h*w); 0 outside -> (B*h*w, C)."""
    inside = (x_index >= 0) & (x_index < width) & (y_index >= 0) & (y_index < height)  # (B, h*w)
    batch = ops.shape(x_index)[0]
    offsets = ops.arange(batch, dtype="int32")[:, None] * (height * width)  # (B, 1)
    index = ops.cast(ops.clip(y_index, 0, height - 1) * width + ops.clip(x_index, 0, width - 1), "int32")
    index = ops.reshape(index + offsets, (-1,))  # (B*h*w,)
    values = ops.take(flat_features, index, axis=0)  # (B*h*w, C)
    return values * ops.cast(ops.reshape(inside, (-1, 1)), values.dtype)


def warp_part(features, affine, warp_sampling="nearest"):
    """Features (B, h, w, C) and one affine per sample (B, 8) at this resolution -> (B, h, w, C).

    "nearest" rounds the source coordinate half away from zero (the original's sampler);
    "bilinear" blends the four neighbours, each 0 outside. Gradients reach the features only.
    """
    check_choice("warp_sampling", warp_sampling, WARP_SAMPLINGS)
    height, width = _check_features(features)
    channels = features.shape[3]
    flat = ops.reshape(features, (-1, channels))  # (B*h*w, C)
    x_in, y_in = _source_coordinates(affine, height, width)  # (B, h*w)
    if warp_sampling == "nearest":
        result = _gather_pixels(flat, _round_half_away_from_zero(x_in), _round_half_away_from_zero(y_in), height, width)
    else:
        x0, y0 = ops.floor(x_in), ops.floor(y_in)
        wx1, wy1 = x_in - x0, y_in - y0  # weights of the right and lower neighbours
        wx0, wy0 = 1.0 - wx1, 1.0 - wy1
        result = None
        for dy, wy in ((0.0, wy0), (1.0, wy1)):
            for dx, wx in ((0.0, wx0), (1.0, wx1)):
                weight = ops.cast(ops.reshape(wx * wy, (-1, 1)), flat.dtype)  # (B*h*w, 1)
                term = weight * _gather_pixels(flat, x0 + dx, y0 + dy, height, width)
                result = term if result is None else result + term
    return ops.reshape(result, ops.shape(features))
