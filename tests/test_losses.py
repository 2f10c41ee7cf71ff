"""GAN losses, L1, the nearest-neighbour loss (against a numpy loop), ReconstructionLoss, VGG, variants."""

import dataclasses
import re

import keras
import numpy as np
import pytest

from dgan_tf import losses
from dgan_tf.losses import (
    ReconstructionLoss,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
    l1_loss,
    nearest_neighbour_loss,
)
from dgan_tf.variants import VARIANTS, Variant, get_variant
from dgan_tf.models.vgg import BGR_MEANS, VGG19_NOTOP_FILENAME, WeightsNotFoundError, VggPreprocess, build_vgg_features


def _np(x):
    return keras.ops.convert_to_numpy(x)


def nn_loss_reference(real, generated, size):
    """Plain loop: for each p, min over the size x size window of real (padded -10000) of sum_c |.|."""
    r = size // 2
    batch, height, width, _ = real.shape
    padded = np.pad(real, ((0, 0), (r, r), (r, r), (0, 0)), constant_values=-10000.0)
    minima = np.empty((batch, height, width))
    for b in range(batch):
        for i in range(height):
            for j in range(width):
                window = padded[b, i:i + size, j:j + size, :]  # (n, n, C)
                minima[b, i, j] = np.abs(window - generated[b, i, j]).sum(axis=-1).min()
    return minima.mean()


# ----- adversarial and L1 -----

def test_adversarial_losses_match_formulas(rng):
    real = rng.uniform(0.05, 0.95, size=(4, 3, 1, 1)).astype("float32")
    fake = rng.uniform(0.05, 0.95, size=(4, 3, 1, 1)).astype("float32")
    expected_d = -np.mean(np.log(real + 1e-7)) - np.mean(np.log(1 - fake + 1e-7))
    np.testing.assert_allclose(_np(discriminator_adversarial_loss(real, fake)), expected_d, rtol=1e-5)
    np.testing.assert_allclose(_np(generator_adversarial_loss(fake)), -np.mean(np.log(fake + 1e-7)), rtol=1e-5)


def test_adversarial_losses_stay_finite_at_saturation():
    ones, zeros = np.ones((2, 7, 7, 1), "float32"), np.zeros((2, 7, 7, 1), "float32")
    assert np.isfinite(_np(discriminator_adversarial_loss(zeros, ones)))
    assert np.isfinite(_np(generator_adversarial_loss(zeros)))
    np.testing.assert_allclose(_np(discriminator_adversarial_loss(ones, zeros)), 0.0, atol=1e-6)


def test_l1_loss_is_mean_absolute_difference(rng):
    a, b = rng.normal(size=(2, 2, 5, 5, 3)).astype("float32")
    np.testing.assert_allclose(_np(l1_loss(a, b)), np.abs(a - b).mean(), rtol=1e-6)


# ----- nearest-neighbour loss -----

@pytest.mark.parametrize("size", [1, 3, 5])
def test_nearest_neighbour_loss_matches_numpy_loop(rng, size):
    real = rng.normal(size=(2, 7, 6, 4)).astype("float32")
    generated = rng.normal(size=(2, 7, 6, 4)).astype("float32")
    np.testing.assert_allclose(_np(nearest_neighbour_loss(real, generated, size)),
                               nn_loss_reference(real, generated, size), rtol=1e-5)


def test_nearest_neighbour_loss_size_one_is_channel_summed_l1(rng):
    real, generated = rng.normal(size=(2, 2, 4, 5, 3)).astype("float32")
    expected = np.abs(real - generated).sum(axis=-1).mean()
    np.testing.assert_allclose(_np(nearest_neighbour_loss(real, generated, 1)), expected, rtol=1e-6)


def test_nearest_neighbour_loss_finds_shifted_copy_and_padding_never_wins(rng):
    real = rng.normal(size=(1, 6, 6, 2)).astype("float32")
    shifted = np.roll(real, 1, axis=2)  # generated(p) = real(p - 1 column), wrapping at the border
    value = _np(nearest_neighbour_loss(real, shifted, 3))
    # Interior columns find their exact match one column to the left; only column 0 (which holds
    # real's last column) may not. A padded neighbour would cost ~10000 per channel, never chosen.
    per_position = np.zeros((6, 6))
    per_position[:, 0] = [np.abs(real[0, max(i - 1, 0):i + 2, 0:2] - shifted[0, i, 0]).sum(-1).min()
                          for i in range(6)]
    np.testing.assert_allclose(value, per_position.mean(), rtol=1e-5, atol=1e-6)
    assert value < 1000.0
    # The pad value is exactly -10000: a generated map far above it matches real values, never the
    # padding; a map AT -10000 matches the padding everywhere but the centre of a 3x3 map.
    zeros = np.zeros((1, 3, 3, 1), "float32")
    np.testing.assert_allclose(_np(nearest_neighbour_loss(zeros, np.full_like(zeros, 9000.0), 3)), 9000.0, rtol=1e-6)
    at_pad = np.full_like(zeros, -10000.0)
    np.testing.assert_allclose(_np(nearest_neighbour_loss(zeros, at_pad, 3)), 10000.0 / 9.0, rtol=1e-6)


def test_nearest_neighbour_loss_gradients_are_finite(rng):
    import tensorflow as tf  # the test drives the TF backend's autodiff

    real = tf.constant(rng.normal(size=(2, 5, 5, 3)).astype("float32"))
    generated = tf.Variable(rng.normal(size=(2, 5, 5, 3)).astype("float32"))
    with tf.GradientTape() as tape:
        value = nearest_neighbour_loss(real, generated, 3)
    grad = tape.gradient(value, generated).numpy()
    assert np.isfinite(grad).all()
    assert np.abs(grad).sum() > 0


@pytest.mark.parametrize("size", [0, 2, 3.0, True])
def test_nearest_neighbour_loss_rejects_bad_size(size):
    x = np.zeros((1, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match="Received: size="):
        nearest_neighbour_loss(x, x, size)


def test_nearest_neighbour_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        nearest_neighbour_loss(np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 4, 5, 2), "float32"), 3)


# ----- ReconstructionLoss -----

def test_reconstruction_loss_on_pixels(rng):
    target, generated = rng.uniform(-1, 1, size=(2, 2, 8, 6, 3)).astype("float32")
    l1 = ReconstructionLoss("l1", "pixels")
    nn = ReconstructionLoss("nn", "pixels", nn_size=3)
    np.testing.assert_allclose(_np(l1(target, generated)), np.abs(target - generated).mean(), rtol=1e-6)
    np.testing.assert_allclose(_np(nn(target, generated)), nn_loss_reference(target, generated, 3), rtol=1e-5)


def test_reconstruction_loss_rejects_unknown_choices():
    with pytest.raises(ValueError, match="Received: reconstruction='l2'"):
        ReconstructionLoss("l2", "pixels")
    with pytest.raises(ValueError, match="Received: features='vgg16'"):
        ReconstructionLoss("l1", "vgg16")


# ----- VGG19 features -----

def test_vgg_missing_weights_error_names_file_folder_and_alternatives(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError) as info:
        build_vgg_features("block1_conv2")
    message = str(info.value)
    assert VGG19_NOTOP_FILENAME in message
    assert str(tmp_path / "models") in message
    assert "https://" in message and "--vgg-weights PATH" in message and "--features pixels" in message
    with pytest.raises(WeightsNotFoundError, match="nowhere.h5"):
        build_vgg_features("block1_conv2", weights_path=tmp_path / "nowhere.h5")


def test_vgg_features_shapes_and_frozen(rng):
    images = rng.uniform(-1, 1, size=(1, 32, 16, 3)).astype("float32")
    block1 = build_vgg_features("block1_conv2", weights="random")
    block2 = build_vgg_features("block2_conv1", weights="random")
    assert _np(block1(images)).shape == (1, 32, 16, 64)
    assert _np(block2(images)).shape == (1, 16, 8, 128)
    assert block1.trainable_weights == [] and block2.trainable_weights == []
    assert len(block2.non_trainable_weights) == 6  # conv1_1, conv1_2, conv2_1: kernel + bias
    assert (_np(block1(images)) >= 0).all()  # post-ReLU features


def test_vgg_weights_load_from_a_given_path(tmp_path, rng):
    source = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    path = tmp_path / "vgg.weights.h5"
    source.save_weights(path)
    loaded = build_vgg_features("block1_conv2", weights_path=str(path))
    kernel = [w for w in loaded.weights if "block1_conv1" in w.path and "kernel" in w.path][0]
    np.testing.assert_array_equal(_np(kernel), _np(source.get_layer("block1_conv1").kernel))


def test_vgg_preprocess_mean_quirk_is_the_default():
    grey = np.zeros((1, 2, 2, 3), "float32")  # 127.5 in every channel
    correct = _np(VggPreprocess(vgg_mean="correct")(grey))[0, 0, 0]
    original = _np(VggPreprocess()(grey))[0, 0, 0]
    np.testing.assert_allclose(correct, 127.5 - np.array(BGR_MEANS), rtol=1e-6)
    np.testing.assert_allclose(original, 127.5 - np.array(BGR_MEANS)[::-1], rtol=1e-6)  # B and R means swapped
    red = np.zeros((1, 1, 1, 3), "float32") - 1.0
    red[..., 0] = 1.0  # pure red in RGB
    np.testing.assert_allclose(_np(VggPreprocess(vgg_mean="correct")(red))[0, 0, 0],
                               np.array([0.0, 0.0, 255.0]) - BGR_MEANS, rtol=1e-6)
    # The original: (x - BGR means) on RGB channels, then flipped: R - 103.939 ends up last.
    np.testing.assert_allclose(_np(VggPreprocess()(red))[0, 0, 0],
                               (np.array([255.0, 0.0, 0.0]) - BGR_MEANS)[::-1], rtol=1e-6)
    assert VggPreprocess().vgg_mean == "original"
    with pytest.raises(ValueError, match="Received: vgg_mean='caffe'"):
        VggPreprocess(vgg_mean="caffe")


def test_vgg_preprocess_config_and_old_files():
    layer = VggPreprocess(vgg_mean="correct", name="pre")
    assert VggPreprocess.from_config(layer.get_config()).vgg_mean == "correct"
    old = {key: value for key, value in layer.get_config().items() if key != "vgg_mean"}
    assert VggPreprocess.from_config({**old, "caffe_mean_quirk": True}).vgg_mean == "original"
    assert VggPreprocess.from_config({**old, "caffe_mean_quirk": False}).vgg_mean == "correct"
    model = build_vgg_features("block1_conv2", weights="random", vgg_mean="correct")
    assert model.get_layer("vgg_preprocess").vgg_mean == "correct"
    assert build_vgg_features("block1_conv2", weights="random").get_layer("vgg_preprocess").vgg_mean == "original"


def test_vgg_rejects_unknown_layer_and_weights():
    with pytest.raises(ValueError, match="Received: layer_name='block9_conv1'"):
        build_vgg_features("block9_conv1", weights="random")
    with pytest.raises(ValueError, match="Received: weights='none'"):
        build_vgg_features("block1_conv2", weights="none")


# ----- variants -----

def test_variant_table_matches_spec():
    rows = {name: (v.architecture, v.reconstruction, v.features, v.reconstruction_weight) for name, v in VARIANTS.items()}
    assert rows == {
        "baseline": ("baseline", "l1", "pixels", 100.0),
        "dsc": ("two_stream", "l1", "pixels", 100.0),
        "percloss": ("two_stream", "l1", "vgg19_block2_conv1", 0.5),
        "full": ("two_stream", "nn", "vgg19_block1_conv2", 0.01),
    }


def test_variant_lookup_and_validation():
    full = get_variant("full")
    with pytest.raises(dataclasses.FrozenInstanceError):
        full.reconstruction_weight = 1.0
    with pytest.raises(ValueError, match=r"Expected one of \('baseline', 'dsc', 'percloss', 'full'\)"):
        get_variant("Full")
    with pytest.raises(ValueError, match="Received: features='vgg16'"):
        Variant("x", "two_stream", "l1", "vgg16", 1.0)
    with pytest.raises(ValueError, match="reconstruction_weight"):
        Variant("x", "two_stream", "l1", "pixels", -1.0)


def test_losses_module_uses_keras_ops_only():
    import inspect

    for module in (losses, __import__("dgan_tf.models.vgg", fromlist=["x"]), __import__("dgan_tf.variants", fromlist=["x"])):
        source = inspect.getsource(module)
        assert "import tensorflow" not in source and not re.search(r"\btf\.", source), module.__name__
