"""The generator's and discriminator's normalisation layers (pose-gan conditional_gan.py:4, 27-28 at 8693ec4).

`ScalarInstanceNorm` is the original's keras-contrib InstanceNormalization(axis=None): per sample
over H, W and C together with ONE scalar gamma and beta. `make_norm` picks it or per-channel
instance norm by name.
"""

import keras
from keras import ops

from dgan_tf.layers.registration import register
from dgan_tf.options import NORMS


@register
class ScalarInstanceNorm(keras.layers.Layer):
    """(x - mean) / (std + epsilon) * gamma + beta, statistics per sample over all of (H, W, C).

    Two parameters (scalar gamma, init 1; scalar beta, init 0). Statistics are computed in
    float32 so the layer is safe under mixed precision.
    """

    def __init__(self, epsilon=1e-3, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(epsilon, (int, float)) or epsilon <= 0:
            raise ValueError(f"ScalarInstanceNorm needs a positive epsilon. Received: epsilon={epsilon!r}")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(
                f"ScalarInstanceNorm needs inputs of rank >= 2 (batch first). Received: input_shape={input_shape}"
            )
        self.gamma = self.add_weight(name="gamma", shape=(1,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(1,), initializer="zeros")

    def call(self, inputs):
        x = ops.cast(inputs, "float32")  # (B, H, W, C)
        axes = tuple(range(1, len(x.shape)))
        mean = ops.mean(x, axis=axes, keepdims=True)  # (B, 1, 1, 1)
        variance = ops.mean(ops.square(x - mean), axis=axes, keepdims=True)  # (B, 1, 1, 1)
        # sqrt'(0) is inf: a constant sample (an all-missing pose gives an all-zero heatmap) would make the
        # gradients of the whole batch NaN. Same values; the gradient at variance 0 is 0.
        positive = variance > 0
        std = ops.where(positive, ops.sqrt(ops.where(positive, variance, 1.0)), 0.0)
        gamma = ops.cast(self.gamma, "float32")
        beta = ops.cast(self.beta, "float32")
        out = (x - mean) / (std + self.epsilon) * gamma + beta
        return ops.cast(out, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


def make_norm(norm, name=None):
    """A fresh normalisation layer: "scalar" (the original's, 2 params) or "instance" (per channel)."""
    if norm == "scalar":
        return ScalarInstanceNorm(epsilon=1e-3, name=name)
    if norm == "instance":
        # groups=-1: one group per channel, i.e. per-channel instance norm with per-channel gamma/beta.
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-3, name=name)
    raise ValueError(f"Unknown norm. Expected one of {NORMS}. Received: norm={norm!r}")
