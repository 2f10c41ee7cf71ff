"""ScalarInstanceNorm, make_norm and PoseHeatmaps: statistics, parameters, serialisation."""

import keras
import numpy as np
import pytest

from dgan_tf.geometry.heatmaps import pose_heatmaps
from dgan_tf.layers.normalization import ScalarInstanceNorm, make_norm
from dgan_tf.layers.pose_heatmaps import PoseHeatmaps
from layer_checks import check_layer


def test_scalar_instance_norm_standardises_each_sample_over_h_w_c(rng):
    x = (rng.normal(size=(3, 8, 6, 5)) * np.array([1.0, 5.0, 0.1])[:, None, None, None] + 7.0).astype("float32")
    y = keras.ops.convert_to_numpy(ScalarInstanceNorm()(x))
    flat = y.reshape(3, -1)
    np.testing.assert_allclose(flat.mean(axis=1), 0.0, atol=1e-5)
    # std / (std + 1e-3): close to 1 but slightly below, exactly as the original.
    expected_std = x.reshape(3, -1).std(axis=1) / (x.reshape(3, -1).std(axis=1) + 1e-3)
    np.testing.assert_allclose(flat.std(axis=1), expected_std, rtol=1e-4)
    # Per channel the means are NOT zero: the statistics are shared across channels.
    assert np.abs(y.mean(axis=(1, 2))).max() > 1e-2


def test_scalar_instance_norm_has_two_scalar_parameters_and_applies_them(rng):
    layer = ScalarInstanceNorm()
    x = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    base = keras.ops.convert_to_numpy(layer(x))
    assert layer.count_params() == 2
    assert [tuple(w.shape) for w in layer.weights] == [(1,), (1,)]
    layer.gamma.assign([2.0])
    layer.beta.assign([0.5])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), base * 2.0 + 0.5, rtol=1e-5, atol=1e-5)


def test_scalar_instance_norm_matches_numpy_formula(rng):
    x = rng.normal(size=(2, 5, 3, 4)).astype("float32")
    flat = x.reshape(2, -1)
    expected = (x - flat.mean(1)[:, None, None, None]) / (flat.std(1)[:, None, None, None] + 1e-3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ScalarInstanceNorm()(x)), expected, rtol=1e-5, atol=1e-5)


def test_scalar_instance_norm_float16_policy_keeps_float32_statistics(rng):
    x = (rng.normal(size=(2, 8, 8, 4)) * 300.0).astype("float32")  # squares overflow float16 above ~65504
    layer = ScalarInstanceNorm(dtype="mixed_float16")
    y = keras.ops.convert_to_numpy(layer(x))
    assert y.dtype == np.float16
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y.astype("float32").reshape(2, -1).std(1), 1.0, atol=1e-2)


def test_scalar_instance_norm_standard_checks(rng, tmp_path):
    x = rng.normal(size=(2, 4, 6, 3)).astype("float32")
    check_layer(ScalarInstanceNorm(epsilon=1e-3), x, tmp_path, expected_output_shapes=(2, 4, 6, 3))


def test_scalar_instance_norm_rejects_bad_epsilon():
    with pytest.raises(ValueError, match="Received: epsilon=-1"):
        ScalarInstanceNorm(epsilon=-1)


def test_make_norm_instance_is_per_channel(rng):
    x = (rng.normal(size=(2, 6, 6, 4)) + np.arange(4) * 10).astype("float32")
    layer = make_norm("instance")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y.mean(axis=(1, 2)), 0.0, atol=1e-4)
    assert layer.count_params() == 2 * 4


def test_make_norm_rejects_unknown_name():
    with pytest.raises(ValueError, match="Received: norm='batch'"):
        make_norm("batch")


@pytest.mark.parametrize("heatmaps", ["staircase", "gaussian"])
def test_pose_heatmaps_layer_matches_function_and_serialises(rng, tmp_path, heatmaps):
    keypoints = rng.uniform(0, 60, size=(2, 18, 2)).astype("float32")
    keypoints[0, 3] = -1.0
    layer = PoseHeatmaps((64, 32), sigma=4.0, heatmaps=heatmaps)
    (out,) = check_layer(layer, keypoints, tmp_path, expected_output_shapes=(2, 64, 32, 18))
    expected = keras.ops.convert_to_numpy(pose_heatmaps(keypoints, (64, 32), 4.0, heatmaps=heatmaps))
    np.testing.assert_allclose(out, expected, atol=1e-6)
    assert out[0, ..., 3].max() == 0.0
    assert layer.count_params() == 0
    assert layer.get_config()["heatmaps"] == heatmaps


def test_pose_heatmaps_layer_defaults_to_the_staircase_and_reads_old_files_as_gaussian():
    assert PoseHeatmaps((64, 32)).heatmaps == "staircase"
    config = PoseHeatmaps((64, 32), name="maps").get_config()
    del config["heatmaps"]  # a file saved before the option existed
    assert PoseHeatmaps.from_config(config).heatmaps == "gaussian"


@pytest.mark.parametrize(
    "kwargs, message",
    [({"image_size": (64,)}, "image_size"), ({"image_size": (64, 32), "sigma": 0}, "sigma=0"),
     ({"image_size": (64, 32), "heatmaps": "smooth"}, "Received: heatmaps='smooth'")],
)
def test_pose_heatmaps_layer_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PoseHeatmaps(**kwargs)


def test_pose_heatmaps_layer_rejects_bad_keypoint_shape():
    with pytest.raises(ValueError, match=r"\(B, 18, 2\)"):
        PoseHeatmaps((64, 32))(np.zeros((1, 17, 2), "float32"))


def test_layer_modules_use_keras_ops_only():
    import inspect
    import re

    from dgan_tf.layers import normalization, pose_heatmaps as pose_heatmaps_module

    for module in (normalization, pose_heatmaps_module):
        source = inspect.getsource(module)
        assert "import tensorflow" not in source and not re.search(r"\btf\.", source), module.__name__
