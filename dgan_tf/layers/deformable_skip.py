"""The deformable skip connection (pose-gan pose_transform.py:21-78 at 8693ec4, AffineTransformLayer).

Warps an appearance feature map once per body part with that part's affine transform, keeps the
part's mask, and combines the parts with an element-wise maximum.
"""

import keras
from keras import ops

from dgan_tf.geometry.warp import warp_part
from dgan_tf.layers.registration import register
from dgan_tf.options import PART_MAXES, WARP_GRADIENTS, WARP_SAMPLINGS, check_choice


def feature_stride(feature_shape, mask_shape):
    """Integer stride s = H // h between full-resolution masks (B, P, H, W) and features (B, h, w, C)."""
    height, width = feature_shape[1], feature_shape[2]
    full_height, full_width = mask_shape[2], mask_shape[3]
    if None in (height, width, full_height, full_width):
        raise ValueError(
            "DeformableSkip needs static spatial sizes. "
            f"Received: features.shape={tuple(feature_shape)}, masks.shape={tuple(mask_shape)}"
        )
    if full_height % height or full_width % width or full_height // height != full_width // width:
        raise ValueError(
            "The masks' size must be the features' size times one integer stride on both axes. "
            f"Received: features.shape={tuple(feature_shape)}, masks.shape={tuple(mask_shape)}"
        )
    return full_height // height


@register
class DeformableSkip(keras.layers.Layer):
    """[features (B, h, w, C), masks (B, P, H, W), affines (B, P, 8)] -> (B, h, w, C).

    Affines are full-resolution target -> source transforms; at stride s their translations are
    divided by s and the masks take every s-th pixel (legacy TF nearest resize). Output =
    max over parts of warp(features, part) * mask(part), so negatives mostly clip to 0.
    `warp_sampling`: "nearest" (the original's) or "bilinear". `warp_gradient`: "original" (TF 1.x's
    inverse-warp gradient of each part's warp, which the original trained with) or "exact" (the
    gather's true gradient); see `dgan_tf.geometry.warp`. `part_max`: "split" (the original's
    reduce_max over the stacked parts, pose-gan pose_transform.py:59 at 8693ec4: a tie's gradient is
    shared equally by the tied parts; ties are common, zeros outside the source image and the masks)
    or "first" (a running maximum part by part: all of a tie's gradient to the first tied part; no
    stack of ten warped maps). The forward pass is the same for every choice of the two gradient
    options; masks get no gradient.
    """

    def __init__(self, warp_sampling="nearest", warp_gradient="original", part_max="split", **kwargs):
        super().__init__(**kwargs)
        self.warp_sampling = check_choice("warp_sampling", warp_sampling, WARP_SAMPLINGS)
        self.warp_gradient = check_choice("warp_gradient", warp_gradient, WARP_GRADIENTS)
        self.part_max = check_choice("part_max", part_max, PART_MAXES)

    def _check_shapes(self, feature_shape, mask_shape, affine_shape):
        if len(feature_shape) != 4 or len(mask_shape) != 4 or len(affine_shape) != 3 or affine_shape[2] != 8:
            raise ValueError(
                "DeformableSkip expects [features (B, h, w, C), masks (B, P, H, W), affines (B, P, 8)]. "
                f"Received shapes: {tuple(feature_shape)}, {tuple(mask_shape)}, {tuple(affine_shape)}"
            )
        if mask_shape[1] != affine_shape[1]:
            raise ValueError(
                f"masks and affines must have the same number of parts. Received: masks.shape={tuple(mask_shape)}, "
                f"affines.shape={tuple(affine_shape)}"
            )
        return feature_stride(feature_shape, mask_shape)

    def build(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or len(input_shape) != 3:
            raise ValueError(f"DeformableSkip takes [features, masks, affines]. Received: input_shape={input_shape}")
        self._check_shapes(*input_shape)
        self.built = True

    def call(self, inputs):
        features, masks, affines = inputs
        stride = self._check_shapes(features.shape, masks.shape, affines.shape)
        affines = ops.stop_gradient(ops.cast(affines, "float32"))  # (B, P, 8)
        masks = ops.stop_gradient(ops.cast(masks, features.dtype))  # (B, P, H, W)
        if stride > 1:
            affines = affines * ops.convert_to_tensor([1.0, 1.0, 1.0 / stride, 1.0, 1.0, 1.0 / stride, 1.0, 1.0])
            masks = masks[:, :, ::stride, ::stride]  # (B, P, h, w)

        def masked_warp(part):  # (B, h, w, C)
            warped = warp_part(features, affines[:, part], self.warp_sampling, self.warp_gradient)
            return warped * masks[:, part, :, :, None]

        parts = range(affines.shape[1])
        if self.part_max == "split":
            # keras.ops.max's gradient shares a tie equally among the tied parts on TensorFlow (reduce_max) and on
            # JAX (lax.reduce_max), as the original's reduce_max did. JAX's rule tests stack == max: under jax.jit,
            # with bilinear values XLA could round differently, its gradient is still finite and TensorFlow's
            # (tests/test_warp.py).
            return ops.max(ops.stack([masked_warp(part) for part in parts], axis=0), axis=0)  # (P, B, h, w, C) -> max
        result = masked_warp(0)
        for part in parts[1:]:
            # max(result, part) with its gradient routed by one boolean, one part at a time: a tie goes to the
            # earlier part, and there is no equality test at all.
            warped = masked_warp(part)
            result = ops.where(warped > result, warped, result)
        return result

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    @classmethod
    def from_config(cls, config):
        # Files saved before each option existed trained with the exact gradient and the first-part max.
        return super().from_config({"warp_gradient": "exact", "part_max": "first", **config})

    def get_config(self):
        config = super().get_config()
        config.update({"warp_sampling": self.warp_sampling, "warp_gradient": self.warp_gradient,
                       "part_max": self.part_max})
        return config
