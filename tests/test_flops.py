"""The analytic FLOP count (dgan_tf.models.flops): a hand-counted model, and the paper's networks."""

import keras
import pytest

from dgan_tf.models.flops import TRAIN_STEP_MULTIPLIERS, count_flops, train_step_flops


def _tiny_model():
    """Input (8, 6, 3); every count below is worked out by hand in test_hand_counted_model."""
    x_in = keras.Input((8, 6, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv_same")(x_in)  # (8, 6, 4)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(5, 2, strides=2, use_bias=False, name="conv_stride")(x)  # (4, 3, 5)
    x = keras.layers.LayerNormalization()(x)
    x = keras.layers.Conv2DTranspose(2, 4, strides=2, padding="same", name="deconv")(x)  # (8, 6, 2)
    per_pixel = keras.layers.Dense(3, name="dense_pixels")(x)  # (8, 6, 3)
    flat = keras.layers.Flatten()(x)  # (96,)
    logits = keras.layers.Dense(7, name="dense_flat")(flat)  # (7,)
    return keras.Model(x_in, [per_pixel, logits])


HAND_COUNTS = {
    "conv_same": 2 * (8 * 6 * 4) * (3 * 3 * 3),  # output elements x kernel x in channels
    "conv_stride": 2 * (4 * 3 * 5) * (2 * 2 * 4),
    "deconv": 2 * (4 * 3 * 5) * (4 * 4 * 2),  # input elements x kernel x out channels
    "dense_pixels": 2 * (8 * 6) * 2 * 3,
    "dense_flat": 2 * 96 * 7,
}


def test_hand_counted_model():
    count = count_flops(_tiny_model())
    assert {path: flops for path, _, flops in count.layers} == HAND_COUNTS
    assert count.flops == sum(HAND_COUNTS.values()) == 10368 + 1920 + 3840 + 576 + 1344
    assert [name for _, name in count.ignored_layers] == ["LayerNormalization"]  # counted as memory-bound
    assert count_flops(_tiny_model(), batch_size=3).flops == 3 * count.flops


def test_nested_model_and_dynamic_input_size():
    """A functional model inside another is walked through; None spatial sizes take input_shapes."""
    inner_in = keras.Input((None, None, 3))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same", name="inner_conv")(inner_in),
                        name="inner")
    outer_in = keras.Input((None, None, 3))
    outer = keras.Model(outer_in, keras.layers.Conv2D(2, 1, name="outer_conv")(inner(outer_in)))
    count = count_flops(outer, [(10, 12, 3)])
    assert dict((p, f) for p, _, f in count.layers) == {
        "inner/inner_conv": 2 * 10 * 12 * 4 * 27, "outer_conv": 2 * 10 * 12 * 2 * 4}
    with pytest.raises(ValueError, match="concrete shapes"):
        count_flops(outer)


def test_rejects_what_it_cannot_count():
    x_in = keras.Input((8, 8, 3))
    model = keras.Model(x_in, keras.layers.DepthwiseConv2D(3)(x_in))
    with pytest.raises(NotImplementedError, match="DepthwiseConv2D"):
        count_flops(model)


def test_train_step_combines_forward_counts():
    x_in = keras.Input((8, 6, 3))
    g = keras.Model(x_in, keras.layers.Conv2D(3, 1)(x_in))
    d = keras.Model(x_in, keras.layers.Conv2D(1, 1)(x_in))
    flops = train_step_flops(g, d)
    assert (flops.generator, flops.discriminator, flops.features) == (2 * 48 * 9, 2 * 48 * 3, 0)
    assert flops.train_step == 4 * flops.generator + 8 * flops.discriminator
    assert TRAIN_STEP_MULTIPLIERS == {"generator": 4, "discriminator": 8, "features": 3}


@pytest.mark.slow  # the paper's networks at width 1
@pytest.mark.parametrize("image_size, generator_gflop, train_dsc_gflop, train_full_gflop", [
    ((128, 64), 17.12, 72.40, 74.30),
    ((256, 256), 138.07, 587.31, 602.49),
])
def test_paper_networks(image_size, generator_gflop, train_dsc_gflop, train_full_gflop):
    """The paper's networks at width 1: G forward ~138 GFLOP per image at 256x256 (an analytic count of the layers)."""
    from dgan_tf.models.discriminator import build_discriminator
    from dgan_tf.models.generator import build_generator
    from dgan_tf.models.vgg import build_vgg_features

    generator = build_generator(image_size)
    discriminator = build_discriminator(image_size)
    count = count_flops(generator)
    assert count.flops / 1e9 == pytest.approx(generator_gflop, abs=0.01)
    assert len(count.layers) == (18 if image_size == (128, 64) else 21)  # 2 encoders, the decoder, the output conv
    ignored = {name for _, name in count.ignored_layers}
    assert ignored == {"KeypointGuard", "PoseHeatmaps", "PartGeometry", "DeformableSkip", "ScalarInstanceNorm"}
    dsc = train_step_flops(generator, discriminator)
    assert dsc.train_step / 1e9 == pytest.approx(train_dsc_gflop, abs=0.01)
    vgg = build_vgg_features("block1_conv2", weights="random")  # the `full` variant's feature network
    full = train_step_flops(generator, discriminator, vgg, image_size=image_size)
    assert full.train_step / 1e9 == pytest.approx(train_full_gflop, abs=0.01)
    assert full.features == 2 * image_size[0] * image_size[1] * 64 * 9 * (3 + 64)  # two 3x3 convs
