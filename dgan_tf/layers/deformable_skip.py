"""The deformable skip connection (pose-gan pose_transform.py:21-78 at 8693ec4, AffineTransformLayer).

Warps an appearance feature map once per body part with that part's affine transform, keeps the
part's mask, and combines the parts with an element-wise maximum, part by part.
"""

import keras
from keras import ops

from dgan_tf.geometry.warp import warp_part
from dgan_tf.layers.registration import register
from dgan_tf.options import WARP_GRADIENTS, WARP_SAMPLINGS, check_choice


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
    gather's true gradient); see `dgan_tf.geometry.warp`. The forward pass is the same for both;
    masks and the max keep their ordinary gradients.
    """

    def __init__(self, warp_sampling="nearest", warp_gradient="original", **kwargs):
        super().__init__(**kwargs)
        self.warp_sampling = check_choice("warp_sampling", warp_sampling, WARP_SAMPLINGS)
        self.warp_gradient = check_choice("warp_gradient", warp_gradient, WARP_GRADIENTS)

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
        result = None
        for part in range(affines.shape[1]):
            warped = warp_part(features, affines[:, part], self.warp_sampling, self.warp_gradient)  # (B, h, w, C)
            warped = warped * masks[:, part, :, :, None]
            # max(result, warped) with its gradient routed by one boolean: a tie goes to the earlier part
            # on both backends (JAX's maximum splits it), and under jax.jit a bilinear value that XLA
            # recomputes with another rounding (FMA) cannot fail an equality test and lose its gradient.
            result = warped if result is None else ops.where(warped > result, warped, result)
        return result

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    @classmethod
    def from_config(cls, config):
        # Files saved before the option existed trained with the exact gradient.
        return super().from_config({"warp_gradient": "exact", **config})

    def get_config(self):
        config = super().get_config()
        config.update({"warp_sampling": self.warp_sampling, "warp_gradient": self.warp_gradient})
        return config
