"""Part warps by gather: one sampling grid per (sample, part), shared by all channels.

Replaces the original's tf.contrib.image.transform on a 10x tiled feature map (pose-gan pose_transform.py:36-66
at 8693ec4, AffineTransformLayer.call). Coordinates follow ImageProjectiveTransform: the output pixel (x, y) =
(column, row) reads the input at (a0 x + a1 y + a2, b0 x + b1 y + b2); constant 0 outside the input.

Gradient to the features, `warp_gradient`:
- "original" (default): what TF 1.x contrib registered for ImageProjectiveTransform and the
  original therefore trained with: the upstream gradient warped by the INVERSE transform, with the
  forward's sampling (nearest or bilinear) and 0 outside. A source pixel p gets the upstream
  gradient read at T^-1(p), whether or not an output sampled p, not the sum over the outputs that
  read it. It is a gather again.
- "exact": the true gradient of the gather (a scatter-add).
Transforms get no gradient either way.
"""

from keras import ops

from dgan_tf.geometry.parts import MIN_DETERMINANT, NO_POINT_SHIFT
from dgan_tf.options import WARP_GRADIENTS, WARP_SAMPLINGS, check_choice


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


def _warp(features, affine, warp_sampling):
    """The gather: features (B, h, w, C), affines (B, 8) -> (B, h, w, C); autodiff gives the exact gradient."""
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


def inverse_affines(affine):
    """Affines (B, 8) [a0 a1 a2 b0 b1 b2 0 0] -> their inverses (B, 8), float32.

    As TF 1.x's gradient did with matrix_inverse of the 3x3 matrix, in closed form. A transform
    whose linear part has |det| <= MIN_DETERMINANT (the geometry already maps those to no_point),
    or whose inverse is not finite, gets the inverse of no_point (identity, -1000 px): it samples
    outside, so its gradient is 0, never NaN or Inf.
    """
    affine = ops.cast(affine, "float32")
    a0, a1, a2, b0, b1, b2 = (affine[:, i] for i in range(6))  # (B,) each
    determinant = a0 * b1 - a1 * b0
    safe = ops.where(ops.abs(determinant) > MIN_DETERMINANT, determinant, ops.ones_like(determinant))
    i0, i1, i3, i4 = b1 / safe, -a1 / safe, -b0 / safe, a0 / safe
    i2, i5 = -(i0 * a2 + i1 * b2), -(i3 * a2 + i4 * b2)
    zero = ops.zeros_like(a0)
    inverse = ops.stack([i0, i1, i2, i3, i4, i5, zero, zero], axis=1)  # (B, 8)
    valid = (ops.abs(determinant) > MIN_DETERMINANT) & ops.all(ops.isfinite(inverse), axis=1)  # (B,)
    no_point_inverse = ops.convert_to_tensor([1.0, 0.0, -NO_POINT_SHIFT, 0.0, 1.0, -NO_POINT_SHIFT, 0.0, 0.0])
    return ops.where(valid[:, None], inverse, ops.zeros_like(inverse) + no_point_inverse)


def _warp_with_inverse_warp_gradient(features, affine, warp_sampling):
    """_warp forward; backward = the upstream gradient warped by the inverse transforms (TF 1.x's rule)."""

    @ops.custom_gradient
    def warp(features, affine):
        def gradient(*args, upstream=None):
            if upstream is None:  # TensorFlow and JAX pass the upstream gradient positionally
                (upstream,) = args
            return _warp(upstream, inverse_affines(affine), warp_sampling), ops.zeros_like(affine)

        return _warp(features, affine, warp_sampling), gradient

    return warp(features, affine)


def warp_part(features, affine, warp_sampling="nearest", warp_gradient="original"):
    """Features (B, h, w, C) and one affine per sample (B, 8) at this resolution -> (B, h, w, C).

    "nearest" rounds the source coordinate half away from zero (the original's sampler);
    "bilinear" blends the four neighbours, each 0 outside. Gradients reach the features only:
    warp_gradient "original" (TF 1.x's inverse warp) or "exact" (see the module docstring).
    """
    check_choice("warp_sampling", warp_sampling, WARP_SAMPLINGS)
    check_choice("warp_gradient", warp_gradient, WARP_GRADIENTS)
    _check_features(features)
    features = ops.convert_to_tensor(features)
    affine = ops.stop_gradient(ops.cast(affine, "float32"))  # (B, 8)
    if warp_gradient == "exact":
        return _warp(features, affine, warp_sampling)
    return _warp_with_inverse_warp_gradient(features, affine, warp_sampling)

