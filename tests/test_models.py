"""Generator and discriminator: exact parameter counts, shapes, ranges, dropout, serialisation."""

import inspect
import re

import keras
import numpy as np
import pytest

from dgan_tf.models import discriminator as discriminator_module
from dgan_tf.models import generator as generator_module
from dgan_tf.models.discriminator import build_discriminator
from dgan_tf.models.generator import build_generator
from layer_checks import check_save_load

MARKET, FASHION = (128, 64), (256, 256)


def _inputs(rng, image_size, batch):
    """Random source image and plausible keypoints (torso present, one joint missing)."""
    height, width = image_size
    image = rng.uniform(-1, 1, size=(batch, height, width, 3)).astype("float32")
    keypoints = []
    for _ in range(2):
        points = np.stack([rng.uniform(0.1, 0.9, size=(batch, 18)) * height,
                           rng.uniform(0.2, 0.8, size=(batch, 18)) * width], axis=-1).astype("float32")
        points[:, 4] = -1.0  # a missing right wrist
        keypoints.append(np.round(points))
    return [image, keypoints[0], keypoints[1]]


@pytest.fixture(scope="module")
def generator_market():
    keras.utils.set_random_seed(0)
    return build_generator(MARKET)


@pytest.fixture(scope="module")
def generator_fashion():
    keras.utils.set_random_seed(0)
    return build_generator(FASHION)


# ----- generator -----

@pytest.mark.slow  # the paper's networks at width 1
def test_generator_parameter_counts_are_the_originals(generator_market, generator_fashion):
    assert generator_market.count_params() == 61_109_085
    assert generator_fashion.count_params() == 82_080_611


@pytest.mark.slow  # the paper's networks at width 1
def test_baseline_generator_parameter_count_and_inputs(generator_market):
    baseline = build_generator(MARKET, architecture="baseline")
    assert baseline.count_params() == 36_072_533
    assert [t.name for t in baseline.inputs] == ["source_image", "source_keypoints", "target_keypoints"]
    assert [t.name for t in generator_market.inputs] == ["source_image", "source_keypoints", "target_keypoints"]
    # One encoder over 39 channels, no warping, against two encoders over 21 and 18 channels.
    assert baseline.get_layer("encoder_conv0").kernel.shape[2] == 39
    assert generator_market.get_layer("appearance_conv0").kernel.shape[2] == 21
    assert generator_market.get_layer("pose_conv0").kernel.shape[2] == 18
    kinds = [type(layer).__name__ for layer in baseline.layers]
    assert "DeformableSkip" not in kinds and "PartGeometry" not in kinds
    two_stream_kinds = [type(layer).__name__ for layer in generator_market.layers]
    assert two_stream_kinds.count("DeformableSkip") == 4 and two_stream_kinds.count("PartGeometry") == 1


@pytest.mark.slow  # the paper's networks at width 1
def test_generator_market_shapes_range_and_bottleneck(generator_market, rng):
    out = keras.ops.convert_to_numpy(generator_market(_inputs(rng, MARKET, 2), training=False))
    assert out.shape == (2, 128, 64, 3)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert tuple(generator_market.get_layer("appearance_down5_conv").output.shape[1:3]) == (4, 2)


@pytest.mark.slow  # the paper's networks at width 1
def test_generator_fashion_shape_range_and_bottleneck(generator_fashion, rng):
    out = keras.ops.convert_to_numpy(generator_fashion(_inputs(rng, FASHION, 1), training=False))
    assert out.shape == (1, 256, 256, 3)
    assert np.isfinite(out).all() and np.abs(out).max() <= 1.0
    assert tuple(generator_fashion.get_layer("appearance_down6_conv").output.shape[1:3]) == (4, 4)


@pytest.mark.slow  # the paper's networks at width 1
def test_generator_dropout_only_in_training(generator_market, rng):
    inputs = _inputs(rng, MARKET, 1)
    dropouts = [layer for layer in generator_market.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.name for layer in dropouts] == [f"decoder_up{i}_dropout" for i in range(3)]
    assert all(layer.rate == 0.5 for layer in dropouts)
    run = lambda training: keras.ops.convert_to_numpy(generator_market(inputs, training=training))  # noqa: E731
    np.testing.assert_array_equal(run(False), run(False))
    assert np.abs(run(True) - run(True)).max() > 1e-4


@pytest.mark.slow  # the paper's networks at width 1
def test_generator_norm_choice_changes_only_norm_parameters():
    scalar = build_generator(MARKET, architecture="baseline", norm="scalar")
    instance = build_generator(MARKET, architecture="baseline", norm="instance")
    assert isinstance(instance.get_layer("encoder_down1_norm"), keras.layers.GroupNormalization)
    # Per-channel gamma/beta replace the 2 scalars in every norm layer: 4 encoder + 5 decoder norms.
    norm_channels = 128 + 256 + 512 + 512 + 512 + 512 + 512 + 256 + 128
    assert instance.count_params() - scalar.count_params() == 2 * norm_channels - 2 * 9


@pytest.mark.slow  # the paper's networks at width 1
def test_generator_keras_round_trip_market(generator_market, rng, tmp_path):
    inputs = _inputs(rng, MARKET, 1)
    reloaded = check_save_load(generator_market, inputs, tmp_path)
    assert reloaded.count_params() == 61_109_085
    assert reloaded.get_layer("deformable_skip0").get_config()["warp_sampling"] == "nearest"
    assert reloaded.get_layer("deformable_skip0").get_config()["warp_gradient"] == "original"
    assert reloaded.get_layer("deformable_skip0").get_config()["part_max"] == "split"
    assert reloaded.get_layer("pose_heatmaps").get_config()["heatmaps"] == "staircase"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"image_size": (256, 176)}, r"divisible by 64.*Received: image_size=\(256, 176\)"),
        ({"image_size": (100, 64)}, "divisible by 64"),
        ({"image_size": (128,)}, "positive integers. Received: image_size=\\(128,\\)"),
        ({"image_size": MARKET, "architecture": "unet"}, "Received: architecture='unet'"),
        ({"image_size": MARKET, "norm": "batch"}, "Received: norm='batch'"),
        ({"image_size": MARKET, "warp_sampling": "cubic"}, "Received: warp_sampling='cubic'"),
        ({"image_size": MARKET, "warp_gradient": "inverse"}, "Received: warp_gradient='inverse'"),
        ({"image_size": MARKET, "part_max": "mean"}, "Received: part_max='mean'"),
        ({"image_size": MARKET, "heatmaps": "smooth"}, "Received: heatmaps='smooth'"),
        ({"image_size": MARKET, "dropout_rate": 1.0}, "Received: dropout_rate=1.0"),
    ],
)
def test_generator_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_generator(**kwargs)


def test_same_padding_equals_the_originals_pad_and_crop(rng):
    """Conv 'same' == ZeroPadding(1) + valid conv; ConvTranspose 'same' == valid + Cropping(1) (k=4, s=2)."""
    x = rng.normal(size=(1, 8, 6, 3)).astype("float32")
    conv_same = keras.layers.Conv2D(5, 4, strides=2, padding="same", use_bias=False)
    conv_valid = keras.layers.Conv2D(5, 4, strides=2, padding="valid", use_bias=False)
    conv_same.build(x.shape), conv_valid.build((1, 10, 8, 3))
    conv_valid.kernel.assign(conv_same.kernel)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(conv_same(x)),
                               keras.ops.convert_to_numpy(conv_valid(keras.layers.ZeroPadding2D(1)(x))), atol=1e-5)
    deconv_same = keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False)
    deconv_valid = keras.layers.Conv2DTranspose(5, 4, strides=2, padding="valid", use_bias=False)
    deconv_same.build(x.shape), deconv_valid.build(x.shape)
    deconv_valid.kernel.assign(deconv_same.kernel)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(deconv_same(x)),
                               keras.ops.convert_to_numpy(keras.layers.Cropping2D(1)(deconv_valid(x))), atol=1e-5)


# ----- discriminator -----

@pytest.mark.slow  # the paper's networks at width 1
@pytest.mark.parametrize("image_size, patches", [(MARKET, (3, 1)), (FASHION, (7, 7))])
def test_discriminator_count_patches_and_range(image_size, patches, rng):
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator(image_size)
    assert discriminator.count_params() == 2_803_782
    assert [t.name for t in discriminator.inputs] == ["source_image", "source_keypoints", "image", "target_keypoints"]
    image, source_keypoints, target_keypoints = _inputs(rng, image_size, 2)
    out = keras.ops.convert_to_numpy(discriminator([image, source_keypoints, -image, target_keypoints]))
    assert out.shape == (2,) + patches + (1,)
    assert ((out > 0) & (out < 1)).all()
    assert discriminator.get_layer("conv_in").kernel.shape[2] == 42


def test_discriminator_keras_round_trip(rng, tmp_path):
    keras.utils.set_random_seed(0)
    discriminator = build_discriminator(MARKET, norm="instance")
    image, source_keypoints, target_keypoints = _inputs(rng, MARKET, 2)
    check_save_load(discriminator, [image, source_keypoints, image, target_keypoints], tmp_path)


def test_discriminator_rejects_bad_arguments():
    with pytest.raises(ValueError, match="Received: image_size=\\(32, 32\\)"):
        build_discriminator((32, 32))
    with pytest.raises(ValueError, match="Received: norm='batch'"):
        build_discriminator(MARKET, norm="batch")
    with pytest.raises(ValueError, match="Received: heatmaps='smooth'"):
        build_discriminator(MARKET, heatmaps="smooth")


def test_model_modules_use_keras_ops_only():
    from dgan_tf.models import original_weights as original_weights_module

    for module in (generator_module, discriminator_module, original_weights_module):
        source = inspect.getsource(module)
        assert "import tensorflow" not in source and not re.search(r"\btf\.", source), module.__name__


def test_width_scales_channels_and_keeps_shapes():
    from dgan_tf.models.discriminator import build_discriminator
    from dgan_tf.models.generator import build_generator

    narrow = build_generator((128, 64), width=0.25)
    assert narrow.get_layer("appearance_conv0").filters == 16
    assert narrow.get_layer("decoder_out_conv").filters == 3  # the image keeps 3 channels
    assert narrow.output.shape[1:] == (128, 64, 3)
    assert narrow.count_params() < 61_109_085 / 10
    d = build_discriminator((128, 64), width=0.25)
    assert d.get_layer("conv_in").filters == 16 and d.output.shape[1:] == (3, 1, 1)
    with pytest.raises(ValueError, match="width"):
        build_generator((128, 64), width=0)


def test_heatmap_and_gradient_options_reach_the_layers_and_change_only_what_they_should(rng):
    """heatmaps changes G's and D's inputs; warp_gradient and part_max change nothing in G's forward pass."""
    inputs = _inputs(rng, MARKET, 2)
    outputs = {}
    for heatmaps, warp_gradient, part_max in (("staircase", "original", "split"), ("staircase", "exact", "first"),
                                              ("gaussian", "original", "split")):
        keras.utils.set_random_seed(0)
        generator = build_generator(MARKET, width=0.125, heatmaps=heatmaps, warp_gradient=warp_gradient,
                                    part_max=part_max)
        assert generator.get_layer("pose_heatmaps").heatmaps == heatmaps
        skips = [generator.get_layer(f"deformable_skip{i}") for i in range(4)]
        assert {(skip.warp_gradient, skip.part_max) for skip in skips} == {(warp_gradient, part_max)}
        outputs[heatmaps, warp_gradient] = keras.ops.convert_to_numpy(generator(inputs, training=False))
    np.testing.assert_array_equal(outputs["staircase", "original"], outputs["staircase", "exact"])
    assert np.abs(outputs["staircase", "original"] - outputs["gaussian", "original"]).max() > 1e-4
    discriminator = build_discriminator(MARKET, width=0.125, heatmaps="gaussian")
    assert discriminator.get_layer("pose_heatmaps").heatmaps == "gaussian"
    assert build_discriminator(MARKET, width=0.125).get_layer("pose_heatmaps").heatmaps == "staircase"
