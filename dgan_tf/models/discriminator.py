"""The conditional PatchGAN discriminator of the original (pose-gan conditional_gan.py:146-182 at 8693ec4).

D(source image, source heatmap, image, target heatmap) -> patch probabilities (B, h, w, 1):
3x1 patches at 128x64, 7x7 at 256x256; 2,803,782 parameters with the scalar norm.
"""

import keras

from dgan_tf.geometry.keypoints import NUM_JOINTS
from dgan_tf.images import ImageSize
from dgan_tf.layers.keypoint_guard import KeypointGuard
from dgan_tf.layers.normalization import make_norm
from dgan_tf.layers.pose_heatmaps import PoseHeatmaps
from dgan_tf.options import HEATMAPS, NORMS, check_choice

DOWN_FILTERS = (128, 256, 512)
# The activations a loss term may compare (feature matching): the first conv and each normalised down block.
FEATURE_LAYERS = ("conv_in",) + tuple(f"down{index + 1}_norm" for index in range(len(DOWN_FILTERS)))


def _validate_image_size(image_size):
    size = ImageSize.of(image_size)
    if min(size) < 64:
        raise ValueError(f"build_discriminator needs both sides of image_size >= 64. "
                         f"Received: image_size={image_size!r}")
    return size


def _down_block(x, filters, norm, name):
    """LeakyReLU(0.2) -> ZeroPadding 1 -> Conv 4x4 stride 2 valid, no bias -> optional norm."""
    x = keras.layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)
    x = keras.layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(filters, 4, strides=2, padding="valid", use_bias=False, name=f"{name}_conv")(x)
    if norm is not None:
        x = make_norm(norm, name=f"{name}_norm")(x)
    return x


def build_discriminator(image_size, norm="scalar", width=1.0, heatmaps="staircase", name="discriminator"):
    """Functional PatchGAN over concat(source image, source heatmap, image, target heatmap) (42 ch).

    Inputs: source_image (B, H, W, 3), source_keypoints (B, 18, 2), image (B, H, W, 3),
    target_keypoints (B, 18, 2). Output: sigmoid probabilities (B, h, w, 1).
    width scales the channel counts (1.0: the paper's network); heatmaps: "staircase" (the
    original's) or "gaussian" pose maps, as for the generator.
    """
    from dgan_tf.models.generator import scale_filters

    image_size = _validate_image_size(image_size)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise ValueError(f"width must be a positive number. Received: width={width!r}")
    first_filters, *down_filters = scale_filters((64,) + DOWN_FILTERS, width)
    check_choice("norm", norm, NORMS)
    check_choice("heatmaps", heatmaps, HEATMAPS)
    image_height, image_width = image_size
    source_image = keras.Input((image_height, image_width, 3), name="source_image")
    source_keypoints = keras.Input((NUM_JOINTS, 2), name="source_keypoints")
    image = keras.Input((image_height, image_width, 3), name="image")
    target_keypoints = keras.Input((NUM_JOINTS, 2), name="target_keypoints")
    inputs = [source_image, source_keypoints, image, target_keypoints]
    # Invalid joints (NaN, Inf, far outside the image) become missing before the heatmaps see them.
    source_keypoints = KeypointGuard(image_size, name="source_keypoint_guard")(source_keypoints)
    target_keypoints = KeypointGuard(image_size, name="target_keypoint_guard")(target_keypoints)

    heatmap_layer = PoseHeatmaps(image_size, heatmaps=heatmaps, name="pose_heatmaps")
    source_heatmap = heatmap_layer(source_keypoints)  # (B, H, W, 18)
    target_heatmap = heatmap_layer(target_keypoints)  # (B, H, W, 18)
    x = keras.layers.Concatenate(axis=-1, name="concat_inputs")(
        [source_image, source_heatmap, image, target_heatmap]
    )  # (B, H, W, 42)
    x = keras.layers.Conv2D(first_filters, 4, strides=2, padding="valid", name="conv_in")(x)  # (B, H/2-1, W/2-1, 64)
    for index, filters in enumerate(down_filters):
        x = _down_block(x, filters, norm, name=f"down{index + 1}")
    x = _down_block(x, 1, None, name=f"down{len(DOWN_FILTERS) + 1}")  # (B, h, w, 1)
    probabilities = keras.layers.Activation("sigmoid", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, probabilities, name=name)


def discriminator_with_features(discriminator):
    """The same network (shared weights) returning [probabilities, *FEATURE_LAYERS activations]."""
    features = [discriminator.get_layer(name).output for name in FEATURE_LAYERS]
    model = keras.Model(discriminator.inputs, [discriminator.outputs[0], *features],
                        name=f"{discriminator.name}_with_features")
    # The JAX step calls it with D's variable lists: they must be the same variables in the same order.
    if [id(v) for v in model.trainable_variables] != [id(v) for v in discriminator.trainable_variables]:
        raise ValueError("discriminator_with_features: the feature model does not share the discriminator's "
                         "variables in order")
    return model
