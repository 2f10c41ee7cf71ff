"""Keypoint validation where keypoints enter a model: invalid joints become missing (-1, -1)."""

import keras

from dgan_tf.geometry.keypoints import KEYPOINT_MARGIN, NUM_JOINTS, sanitize_keypoints
from dgan_tf.images import ImageSize
from dgan_tf.layers.registration import register


@register
class KeypointGuard(keras.layers.Layer):
    """Keypoints (B, 18, 2) in (y, x), any numeric dtype -> float32 (B, 18, 2) with invalid joints set to -1.

    A joint with a non-finite coordinate, one coordinate of -1, or a coordinate more than `margin` image sizes
    beyond a border is treated as missing (`dgan_tf.geometry.keypoints.sanitize_keypoints`), so that whatever
    reaches a generator or discriminator (Python API, exported model) leaves every value and gradient finite and
    one bad sample never changes the others of its batch. No weights; keypoints stay float32 under any policy.
    """

    def __init__(self, image_size, margin=KEYPOINT_MARGIN, **kwargs):
        kwargs.setdefault("autocast", False)  # pixel coordinates: never cast to float16/bfloat16
        super().__init__(**kwargs)
        self.image_size = ImageSize.of(image_size)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin <= 100:
            raise ValueError(f"KeypointGuard needs a margin in [0, 100] image sizes. Received: margin={margin!r}")
        self.margin = float(margin)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[1] != NUM_JOINTS or input_shape[2] != 2:
            raise ValueError(
                f"KeypointGuard expects keypoints of shape (B, {NUM_JOINTS}, 2). Received: input_shape={input_shape}")

    def call(self, keypoints_yx):
        return sanitize_keypoints(keypoints_yx, self.image_size, self.margin)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(self, keypoints_yx):
        return keras.KerasTensor(keypoints_yx.shape, dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": list(self.image_size), "margin": self.margin})
        return config
