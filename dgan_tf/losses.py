"""GAN and reconstruction losses of the original, in keras.ops (TensorFlow and JAX backends).
The original's: pose-gan gan/gan.py:67-103 (submodule a4aa9a3) and conditional_gan.py:232-298 at 8693ec4.

All losses return a scalar float32. The reconstruction loss of a variant is built with
`ReconstructionLoss` (L1 or nearest-neighbour loss, on pixels or on frozen VGG19 features).
"""

from keras import ops

from dgan_tf.options import FEATURES, RECONSTRUCTIONS, check_choice

LOG_EPSILON = 1e-7
NN_PAD_VALUE = -10000.0


def _as_float32(x):
    return ops.cast(x, "float32")


def discriminator_adversarial_loss(real_prob, fake_prob):
    """-mean(log(D(real) + 1e-7)) - mean(log(1 - D(fake) + 1e-7)); probabilities in [0, 1]."""
    real_prob, fake_prob = _as_float32(real_prob), _as_float32(fake_prob)
    return -ops.mean(ops.log(real_prob + LOG_EPSILON)) - ops.mean(ops.log(1.0 - fake_prob + LOG_EPSILON))


def generator_adversarial_loss(fake_prob):
    """Non-saturating generator loss -mean(log(D(fake) + 1e-7))."""
    return -ops.mean(ops.log(_as_float32(fake_prob) + LOG_EPSILON))


def l1_loss(target, generated):
    """Mean absolute difference over every element."""
    return ops.mean(ops.abs(_as_float32(target) - _as_float32(generated)))


def nearest_neighbour_loss(real_features, generated_features, size):
    """Mean over (B, H, W) of min over the size x size neighbourhood q of sum_c |F_real(q) - F_gen(p)|.

    The real map is padded with -10000 so padding never wins. A running minimum over the
    size * size shifts keeps one (B, H, W) distance map alive at a time (never all shifts stacked).
    """
    if not isinstance(size, int) or isinstance(size, bool) or size < 1 or size % 2 == 0:
        raise ValueError(f"nearest_neighbour_loss needs an odd positive int size. Received: size={size!r}")
    real = _as_float32(real_features)  # (B, H, W, C)
    generated = _as_float32(generated_features)  # (B, H, W, C)
    if len(real.shape) != 4 or tuple(real.shape[1:]) != tuple(generated.shape[1:]):
        raise ValueError(
            "nearest_neighbour_loss needs two (B, H, W, C) maps of the same shape. "
            f"Received: real_features.shape={real.shape}, generated_features.shape={generated.shape}"
        )
    height, width = real.shape[1], real.shape[2]
    if height is None or width is None:
        raise ValueError(f"nearest_neighbour_loss needs static H and W. Received: shape={real.shape}")
    radius = size // 2
    padded = ops.pad(
        real, ((0, 0), (radius, radius), (radius, radius), (0, 0)), constant_values=NN_PAD_VALUE
    )  # (B, H + 2r, W + 2r, C)
    running_min = None
    for dy in range(size):
        for dx in range(size):
            shifted = padded[:, dy : dy + height, dx : dx + width, :]  # (B, H, W, C)
            distance = ops.sum(ops.abs(shifted - generated), axis=-1)  # (B, H, W)
            running_min = distance if running_min is None else ops.minimum(running_min, distance)
    return ops.mean(running_min)


class ReconstructionLoss:
    """Callable reconstruction term of a variant: `loss(target_image, generated_image)` -> scalar.

    reconstruction "l1" or "nn"; features "pixels" or a VGG19 layer ("vgg19_block2_conv1",
    "vgg19_block1_conv2"); nn_size the neighbourhood n (3 Market, 5 Fashion). The VGG model is
    built once here (from `vgg_weights_path`, the Keras cache, or a checked download unless offline). Unweighted:
    the caller multiplies by the variant's lambda.
    """

    def __init__(self, reconstruction, features, nn_size=3, vgg_weights_path=None, vgg_weights="imagenet",
                 vgg_mean="original"):
        check_choice("reconstruction", reconstruction, RECONSTRUCTIONS)
        check_choice("features", features, FEATURES)
        if reconstruction == "nn" and (not isinstance(nn_size, int) or nn_size < 1 or nn_size % 2 == 0):
            raise ValueError(f"nn_size must be an odd positive int. Received: nn_size={nn_size!r}")
        self.reconstruction = reconstruction
        self.features = features
        self.nn_size = nn_size
        self.feature_model = None
        if features != "pixels":
            from dgan_tf.models.vgg import build_vgg_features  # imported lazily: pixel losses need no VGG

            self.feature_model = build_vgg_features(
                features[len("vgg19_"):], weights_path=vgg_weights_path, weights=vgg_weights,
                vgg_mean=vgg_mean,
            )

    def __call__(self, target_image, generated_image):
        if self.feature_model is not None:
            target_image = self.feature_model(target_image)  # (B, h, w, C)
            generated_image = self.feature_model(generated_image)  # (B, h, w, C)
        if self.reconstruction == "l1":
            return l1_loss(target_image, generated_image)
        return nearest_neighbour_loss(target_image, generated_image, self.nn_size)

    def __repr__(self):
        return (f"ReconstructionLoss(reconstruction={self.reconstruction!r}, features={self.features!r}, "
                f"nn_size={self.nn_size!r})")
