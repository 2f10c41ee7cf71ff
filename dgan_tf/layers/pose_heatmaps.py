"""Keras layer computing pose heatmaps from keypoints inside a model (pose-gan pose_utils.py:52-59 at 8693ec4)."""

import keras
from keras import ops

from dgan_tf.geometry.heatmaps import DEFAULT_SIGMA, pose_heatmaps
from dgan_tf.geometry.keypoints import NUM_JOINTS
from dgan_tf.images import ImageSize
from dgan_tf.layers.registration import register
from dgan_tf.options import HEATMAPS, check_choice


@register
class PoseHeatmaps(keras.layers.Layer):
    """Keypoints (B, 18, 2) in (y, x), -1 missing -> heatmaps (B, H, W, 18) in [0, 1].

    heatmaps: "staircase" (the original's integer-arithmetic maps) or "gaussian" (smooth); see
    `dgan_tf.geometry.heatmaps`. No weights; gradients are stopped (keypoints are data).
    """

    def __init__(self, image_size, sigma=DEFAULT_SIGMA, heatmaps="staircase", **kwargs):
        # Keypoints are pixel coordinates: keep them float32 even under a float16 policy.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.image_size = ImageSize.of(image_size)
        if not isinstance(sigma, (int, float)) or sigma <= 0:
            raise ValueError(f"PoseHeatmaps needs a positive sigma. Received: sigma={sigma!r}")
        self.sigma = float(sigma)
        self.heatmaps = check_choice("heatmaps", heatmaps, HEATMAPS)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] != NUM_JOINTS or input_shape[2] != 2:
            raise ValueError(
                f"PoseHeatmaps expects keypoints of shape (B, {NUM_JOINTS}, 2). Received: input_shape={input_shape}"
            )

    def call(self, keypoints_yx):
        maps = pose_heatmaps(keypoints_yx, self.image_size, self.sigma, self.heatmaps)  # (B, H, W, 18)
        return ops.cast(ops.stop_gradient(maps), self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.image_size[0], self.image_size[1], NUM_JOINTS)

    @classmethod
    def from_config(cls, config):
        # Files saved before the option existed computed smooth Gaussians.
        return super().from_config({"heatmaps": "gaussian", **config})

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": list(self.image_size), "sigma": self.sigma, "heatmaps": self.heatmaps})
        return config
