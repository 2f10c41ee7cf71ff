"""The converter of the original's Keras 2 HDF5 weight files, on small files written here with h5py.

The proof against the original's networks themselves (re-typed for tf_keras) is test_original_parity.py.
"""

import h5py
import keras
import numpy as np
import pytest

from dgan_tf.models.generator import build_generator
from dgan_tf.models.original_weights import (
    KNOWN_NETWORKS, assign_original_weights, describe_original_file, load_original_generator, read_original_weights,
)
from original_pose_gan.keras2_files import full_size_file as _full_size_file
from original_pose_gan.keras2_files import original_layers as _original_layers
from original_pose_gan.keras2_files import write_keras2_file

MARKET = (128, 64)
WIDTH = 1 / 16  # encoder filters 4, 8, 16, 32, 32, 32

# Our two-stream generator's layers with weights at 128x64, in the order conditional_gan.py creates them,
# each with the automatic name Keras 2.0.8 gave its counterpart (numbered per class from 1).
_ENCODER = ["conv0"] + [f"down{i}_{part}" for i in range(1, 6) for part in ("conv", "norm") if (i, part) != (5, "norm")]
_DECODER = [f"decoder_up{i}_{part}" for i in range(5) for part in ("deconv", "norm")] + ["decoder_out_conv"]
OURS_IN_CREATION_ORDER = [f"appearance_{n}" for n in _ENCODER] + [f"pose_{n}" for n in _ENCODER] + _DECODER


def _keras2_names(ours):
    """Keras 2.0.8's automatic layer names for our layers, in creation order."""
    counters, names = {}, []
    for name in ours:
        kind = ("conv2d_transpose" if name.endswith("deconv") else "instance_normalization" if name.endswith("norm")
                else "conv2d")
        counters[kind] = counters.get(kind, 0) + 1
        names.append(f"{kind}_{counters[kind]}")
    return names


@pytest.fixture(scope="module")
def tiny_generator():
    keras.utils.set_random_seed(0)
    return build_generator(MARKET, width=WIDTH)


def _tiny_file_layers(model, rng):
    """File layers for `model` with random arrays, weightless layers in between, in a scrambled order."""
    file_names = _keras2_names(OURS_IN_CREATION_ORDER)
    arrays = {}
    layers = []
    for ours, theirs in zip(OURS_IN_CREATION_ORDER, file_names):
        weights = [(v.name, rng.normal(size=v.shape).astype(np.float32)) for v in model.get_layer(ours).weights]
        arrays[ours] = [a for _, a in weights]
        layers.append((theirs, weights))
    layers += [("input_1", []), ("leaky_re_lu_3", []), ("affine_transform_layer_2", [])]
    order = np.random.default_rng(7).permutation(len(layers))  # the file's order must not matter
    return [layers[i] for i in order], arrays


def test_known_networks_have_the_papers_parameter_counts():
    counts = {(n.network, n.dataset, n.architecture): n.parameters for n in KNOWN_NETWORKS}
    assert counts == {
        ("generator", "market", "two_stream"): 61_109_085,
        ("generator", "market", "baseline"): 36_072_533,
        ("generator", "fashion", "two_stream"): 82_080_611,
        ("generator", "fashion", "baseline"): 48_655_449,
        ("discriminator", "market", None): 2_803_782,
        ("discriminator", "fashion", None): 2_803_782,
    }


@pytest.mark.parametrize("whole_model", [False, True], ids=["save_weights", "model_save"])
def test_layers_pair_by_creation_number_whatever_the_file_order(tiny_generator, tmp_path, rng, whole_model):
    layers, arrays = _tiny_file_layers(tiny_generator, rng)
    path = tmp_path / "generator.h5"
    write_keras2_file(path, layers, whole_model=whole_model)
    read = read_original_weights(path)
    assert [name for name, _ in read] == [name for name, weights in layers if weights]  # the file's order
    assign_original_weights(tiny_generator, read)
    for ours, expected in arrays.items():
        for variable, array in zip(tiny_generator.get_layer(ours).weights, expected):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), array, err_msg=ours)
    # conv2d_7 is the pose encoder's first convolution: the appearance encoder made conv2d_1..6.
    conv2d_7 = dict(read)["conv2d_7"][0]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tiny_generator.get_layer("pose_conv0").kernel), conv2d_7)
    summary = describe_original_file(path)
    assert summary.parameters == tiny_generator.count_params() and summary.layers == len(OURS_IN_CREATION_ORDER)
    assert summary.matches == () and "matches none of the original's networks" in str(summary)


def test_a_shape_mismatch_names_both_layers_and_shapes_and_assigns_nothing(tiny_generator, tmp_path, rng):
    layers, _ = _tiny_file_layers(tiny_generator, rng)
    # The pose encoder's first down convolution, 4 -> 8 channels, stored transposed: same size, other shape.
    layers = [(name, [(w, np.ascontiguousarray(a.transpose(0, 1, 3, 2))) for w, a in weights])
              if name == "conv2d_8" else (name, weights) for name, weights in layers]
    path = tmp_path / "generator.h5"
    write_keras2_file(path, layers)
    before = [keras.ops.convert_to_numpy(v) for v in tiny_generator.weights]
    message = r"'conv2d_8' has arrays of shapes \[\(4, 4, 8, 4\)\], but our layer 'pose_down1_conv' has \[\(4, 4, 4, 8\)\]"
    with pytest.raises(ValueError, match=message):
        assign_original_weights(tiny_generator, read_original_weights(path), source=str(path))
    for variable, value in zip(tiny_generator.weights, before):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), value)


def test_a_file_of_another_size_or_variant_is_refused_with_what_it_looks_like(tiny_generator, tmp_path):
    path = _full_size_file(tmp_path / "market.h5", "generator", MARKET, "two_stream")
    assert path.stat().st_size < 1_000_000
    summary = describe_original_file(path)
    assert summary.parameters == 61_109_085 and [str(m) for m in summary.matches] == [
        "two_stream generator (variants dsc, percloss, full) at market 128x64"]
    looks_like = r"61,109,085 parameters in 31 layers with weights, which is the original's two_stream generator " \
                 r"\(variants dsc, percloss, full\) at market 128x64"
    with pytest.raises(ValueError, match=looks_like + r"; the two_stream generator at \(256, 256\) has 82,080,611"):
        load_original_generator(path, (256, 256))
    with pytest.raises(ValueError, match=looks_like + r"; the baseline generator at \(128, 64\) has 36,072,533"):
        load_original_generator(path, MARKET, architecture="baseline")
    discriminator = _full_size_file(tmp_path / "d.h5", "discriminator", (256, 256))
    with pytest.raises(ValueError, match=r"2,803,782 parameters in 8 layers with weights, which is the original's "
                                         r"discriminator at market 128x64 or discriminator at fashion 256x256"):
        load_original_generator(discriminator, MARKET)
    tiny = tiny_generator.count_params()
    zeros = [(name, [np.zeros(shape, np.float32) for _, shape in weights])
             for name, weights in _original_layers("discriminator", MARKET)]
    with pytest.raises(ValueError, match=rf"holds 2,803,782 parameters .* discriminator at .*; the model 'generator' "
                                         rf"has {tiny:,} parameters, which matches none"):
        assign_original_weights(tiny_generator, zeros)


def test_files_that_are_not_keras_2_weights_are_refused_by_name(tiny_generator, tmp_path):
    with pytest.raises(FileNotFoundError, match="No original weight file at .*missing.h5"):
        read_original_weights(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5 is not an HDF5 file"):
        read_original_weights(text)
    keras3 = tmp_path / "keras3.weights.h5"
    with h5py.File(keras3, "w") as file:
        file.create_group("layers")
    with pytest.raises(ValueError, match="keras3.weights.h5 is not a Keras 2 HDF5 weight file"):
        describe_original_file(keras3)
    renamed = [("my_conv", [np.zeros(tiny_generator.count_params(), np.float32)])]
    with pytest.raises(ValueError, match="layer 'my_conv' is not a layer of the original's networks"):
        assign_original_weights(tiny_generator, renamed)
    layers, _ = _tiny_file_layers(tiny_generator, np.random.default_rng(0))
    relabelled = [("conv2d_99" if name == "instance_normalization_1" else name, [a for _, a in weights])
                  for name, weights in layers if weights]
    with pytest.raises(ValueError, match="has layers 14 conv2d, 5 conv2d_transpose, 12 instance_normalization; the "
                                         "model 'generator' has the same number of parameters in layers 13 conv2d"):
        assign_original_weights(tiny_generator, relabelled)
