"""The U-Net generator of the original (pose-gan conditional_gan.py:16-143 at 8693ec4, make_generator).

two_stream (the paper's deformable GAN): an appearance encoder over source image + source heatmap,
a pose encoder over the target heatmap, appearance skips 0-3 warped part by part with
DeformableSkip. baseline: one encoder over source image + both heatmaps, plain skips.
"""

import keras

from dgan_tf.geometry.keypoints import NUM_JOINTS
from dgan_tf.images import ImageSize
from dgan_tf.layers.keypoint_guard import KeypointGuard
from dgan_tf.layers.normalization import make_norm
from dgan_tf.layers.pose_heatmaps import PoseHeatmaps
from dgan_tf.options import ARCHITECTURES, HEATMAPS, NORMS, PART_MAXES, WARP_GRADIENTS, WARP_SAMPLINGS, check_choice

# Filters by dataset resolution, chosen by max(image_size) == 128 as in the original.
MARKET_ENCODER_FILTERS = (64, 128, 256, 512, 512, 512)
MARKET_DECODER_FILTERS = (512, 512, 512, 256, 128, 3)
FASHION_ENCODER_FILTERS = (64, 128, 256, 512, 512, 512, 512)
FASHION_DECODER_FILTERS = (512, 512, 512, 512, 256, 128, 3)
WARPED_LEVELS = 4  # encoder levels 0-3 (full, 1/2, 1/4, 1/8 resolution) go through DeformableSkip
DROPOUT_UP_BLOCKS = 3  # dropout on the first three up blocks only


def generator_filters(image_size):
    """(encoder filters, decoder filters) for an image size: Market when max(H, W) == 128, else Fashion."""
    if max(image_size) == 128:
        return MARKET_ENCODER_FILTERS, MARKET_DECODER_FILTERS
    return FASHION_ENCODER_FILTERS, FASHION_DECODER_FILTERS


def scale_filters(filters, width):
    """Channel counts times the width multiplier (at least 1 each); 1.0 keeps the paper's networks."""
    return tuple(max(1, int(round(count * width))) for count in filters)


def _validate_arguments(image_size, architecture, norm, warp_sampling, dropout_rate, width=1.0,
                        heatmaps="staircase", warp_gradient="original", part_max="split"):
    image_size = ImageSize.of(image_size)
    encoder_filters, _ = generator_filters(image_size)
    stride = 2 ** (len(encoder_filters) - 1)
    if image_size.height % stride or image_size.width % stride:
        raise ValueError(
            f"build_generator needs H and W divisible by {stride} (the generator has {len(encoder_filters) - 1} "
            f"stride-2 down blocks at this size, e.g. (128, 64) or (256, 256)). Received: image_size={tuple(image_size)}"
        )
    check_choice("architecture", architecture, ARCHITECTURES)
    check_choice("norm", norm, NORMS)
    check_choice("warp_sampling", warp_sampling, WARP_SAMPLINGS)
    check_choice("warp_gradient", warp_gradient, WARP_GRADIENTS)
    check_choice("part_max", part_max, PART_MAXES)
    check_choice("heatmaps", heatmaps, HEATMAPS)
    if isinstance(dropout_rate, bool) or not isinstance(dropout_rate, (int, float)) or not 0 <= dropout_rate < 1:
        raise ValueError(f"dropout_rate must be a number in [0, 1). Received: dropout_rate={dropout_rate!r}")
    if isinstance(width, bool) or not isinstance(width, (int, float)) or width <= 0:
        raise ValueError(f"width must be a positive number. Received: width={width!r}")


def _encoder(x, filters, norm, prefix):
    """Levels [0 .. L-1]: Conv 3x3 with bias, then LeakyReLU -> Conv 4x4 s2 no bias -> norm (none on the last)."""
    x = keras.layers.Conv2D(filters[0], 3, padding="same", name=f"{prefix}_conv0")(x)  # (B, H, W, 64)
    levels = [x]
    for index, count in enumerate(filters[1:], start=1):
        x = keras.layers.LeakyReLU(0.2, name=f"{prefix}_down{index}_lrelu")(x)
        # "same" with k=4, s=2 on even sizes pads 1 on each side: the original's ZeroPadding(1) + valid conv (and
        # "same" below its valid transpose conv + Cropping(1)), up to rounding: TF picks other kernels, which puts
        # the paper's generators up to 5.3e-6 from the original's outputs (tests/test_original_parity.py); the
        # explicit pad / crop (0 apart there) measured 4-10% more CPU time per forward + backward.
        x = keras.layers.Conv2D(count, 4, strides=2, padding="same", use_bias=False, name=f"{prefix}_down{index}_conv")(x)
        if index < len(filters) - 1:
            x = make_norm(norm, name=f"{prefix}_down{index}_norm")(x)
        levels.append(x)  # (B, H / 2^index, W / 2^index, count)
    return levels


def _decoder(skips, filters, norm, dropout_rate):
    """U-Net decoder over skips deepest first; returns the tanh image (B, H, W, 3)."""
    x = None
    for index, (skip, count) in enumerate(zip(skips[:-1], filters[:-1])):
        if x is not None:
            x = keras.layers.Concatenate(axis=-1, name=f"decoder_up{index}_concat")([x, skip])
        else:
            x = skip  # step 0 takes the bottleneck skip alone
        x = keras.layers.ReLU(name=f"decoder_up{index}_relu")(x)
        # "same" with k=4, s=2 equals the original's valid transpose conv + Cropping2D(1).
        x = keras.layers.Conv2DTranspose(count, 4, strides=2, padding="same", use_bias=False,
                                         name=f"decoder_up{index}_deconv")(x)
        x = make_norm(norm, name=f"decoder_up{index}_norm")(x)
        if index < DROPOUT_UP_BLOCKS and dropout_rate > 0:
            x = keras.layers.Dropout(dropout_rate, name=f"decoder_up{index}_dropout")(x)
    x = keras.layers.Concatenate(axis=-1, name="decoder_out_concat")([x, skips[-1]])
    x = keras.layers.ReLU(name="decoder_out_relu")(x)
    x = keras.layers.Conv2D(filters[-1], 3, padding="same", name="decoder_out_conv")(x)  # (B, H, W, 3)
    return keras.layers.Activation("tanh", dtype="float32", name="generated_image")(x)


def build_generator(image_size, architecture="two_stream", norm="scalar", warp_sampling="nearest",
                    dropout_rate=0.5, width=1.0, heatmaps="staircase", warp_gradient="original", part_max="split",
                    name="generator"):
    """Functional generator: [source_image (B,H,W,3) in [-1,1], source_keypoints (B,18,2),
    target_keypoints (B,18,2)] (y, x; -1 missing) -> generated image (B, H, W, 3) in [-1, 1].

    width scales every channel count but the 3 output channels (1.0: the paper's network).
    heatmaps: "staircase" (the original's) or "gaussian" pose maps; warp_gradient: "original"
    (TF 1.x's inverse-warp gradient through the part warps) or "exact"; part_max: "split" (the original's
    reduce_max gradient over the parts) or "first" (see DeformableSkip).
    """
    _validate_arguments(image_size, architecture, norm, warp_sampling, dropout_rate, width, heatmaps, warp_gradient,
                        part_max)
    image_size = ImageSize.of(image_size)
    image_height, image_width = image_size
    encoder_filters, decoder_filters = generator_filters(image_size)
    encoder_filters = scale_filters(encoder_filters, width)
    decoder_filters = scale_filters(decoder_filters[:-1], width) + decoder_filters[-1:]
    source_image = keras.Input((image_height, image_width, 3), name="source_image")
    source_keypoints = keras.Input((NUM_JOINTS, 2), name="source_keypoints")
    target_keypoints = keras.Input((NUM_JOINTS, 2), name="target_keypoints")
    inputs = [source_image, source_keypoints, target_keypoints]
    # Invalid joints (NaN, Inf, far outside the image) become missing before any geometry sees them.
    source_keypoints = KeypointGuard(image_size, name="source_keypoint_guard")(source_keypoints)
    target_keypoints = KeypointGuard(image_size, name="target_keypoint_guard")(target_keypoints)

    heatmap_layer = PoseHeatmaps(image_size, heatmaps=heatmaps, name="pose_heatmaps")
    source_heatmap = heatmap_layer(source_keypoints)  # (B, H, W, 18)
    target_heatmap = heatmap_layer(target_keypoints)  # (B, H, W, 18)

    if architecture == "baseline":
        x = keras.layers.Concatenate(axis=-1, name="encoder_input")(
            [source_image, source_heatmap, target_heatmap]
        )  # (B, H, W, 39)
        skips = _encoder(x, encoder_filters, norm, prefix="encoder")
    else:
        # Imported here so that the baseline builds without the warping layers.
        from dgan_tf.layers.deformable_skip import DeformableSkip
        from dgan_tf.layers.part_geometry import PartGeometry

        appearance_input = keras.layers.Concatenate(axis=-1, name="appearance_input")(
            [source_image, source_heatmap]
        )  # (B, H, W, 21)
        appearance = _encoder(appearance_input, encoder_filters, norm, prefix="appearance")
        pose = _encoder(target_heatmap, encoder_filters, norm, prefix="pose")
        masks, affines = PartGeometry(image_size=image_size, name="part_geometry")(
            [source_keypoints, target_keypoints]
        )  # (B, 10, H, W), (B, 10, 8)
        skips = []
        for level, (appearance_level, pose_level) in enumerate(zip(appearance, pose)):
            if level < WARPED_LEVELS:
                appearance_level = DeformableSkip(warp_sampling=warp_sampling, warp_gradient=warp_gradient,
                                                  part_max=part_max, name=f"deformable_skip{level}")(
                    [appearance_level, masks, affines])
            skips.append(keras.layers.Concatenate(axis=-1, name=f"skip{level}")([appearance_level, pose_level]))

    generated = _decoder(skips[::-1], decoder_filters, norm, dropout_rate)
    return keras.Model(inputs, generated, name=name)
