"""Part masks and affines computed from keypoints inside a model (pose-gan pose_transform.py:125-265 at 8693ec4),
no gradient."""

import keras
from keras import ops

from dgan_tf.geometry.parts import part_affines, part_masks
from dgan_tf.geometry.keypoints import NUM_PARTS
from dgan_tf.images import ImageSize
from dgan_tf.layers.registration import register


@register
class PartGeometry(keras.layers.Layer):
    """[keypoints_source_yx, keypoints_target_yx] (B, 18, 2) -> [masks (B, 10, H, W), affines (B, 10, 8)].

    Thin wrapper of dgan_tf.geometry so a generator can take keypoints as inputs.
    """

    def __init__(self, image_size, **kwargs):
        super().__init__(**kwargs)
        self.image_size = ImageSize.of(image_size)

    def call(self, inputs):
        keypoints_source_yx, keypoints_target_yx = inputs
        masks = part_masks(keypoints_target_yx, self.image_size)  # (B, 10, H, W)
        affines = part_affines(keypoints_source_yx, keypoints_target_yx)  # (B, 10, 8)
        return [ops.stop_gradient(masks), ops.stop_gradient(affines)]

    def compute_output_shape(self, input_shape):
        batch = input_shape[0][0]
        return [(batch, NUM_PARTS, *self.image_size), (batch, NUM_PARTS, 8)]

    def get_config(self):
        config = super().get_config()
        config.update({"image_size": list(self.image_size)})
        return config
