"""DeformableSkip and PartGeometry layers: semantics, stride handling, serialisation, XLA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from dgan_tf.geometry.parts import part_affines, part_masks
from dgan_tf.layers.deformable_skip import DeformableSkip
from dgan_tf.layers.part_geometry import PartGeometry
from layer_checks import check_config_round_trip, check_layer
from test_geometry import BASE_POSE

IDENTITY = np.array([1, 0, 0, 0, 1, 0, 0, 0], dtype=np.float32)
NO_POINT = np.array([1, 0, 1000, 0, 1, 1000, 0, 0], dtype=np.float32)


def _inputs(rng, batch=2, size=(16, 8), stride=2, channels=3):
    features = rng.normal(size=(batch, size[0] // stride, size[1] // stride, channels)).astype(np.float32)
    masks = (rng.uniform(size=(batch, 10) + size) > 0.5).astype(np.float32)
    affines = np.tile(IDENTITY, (batch, 10, 1))
    affines[:, :, 2] = rng.uniform(-2, 2, (batch, 10))
    affines[:, :, 5] = rng.uniform(-2, 2, (batch, 10))
    return [features, masks, affines]


def test_standard_layer_checks(rng, tmp_path):
    inputs = _inputs(rng)
    check_layer(DeformableSkip(), inputs, tmp_path, expected_output_shapes=inputs[0].shape)
    layer = check_config_round_trip(DeformableSkip(warp_sampling="bilinear", warp_gradient="exact", name="skip_1"))
    assert layer.warp_sampling == "bilinear" and layer.warp_gradient == "exact"
    assert set(layer.get_config()) >= {"warp_sampling", "warp_gradient", "name"}
    assert DeformableSkip().warp_gradient == "original"


def test_files_saved_before_the_gradient_option_keep_the_exact_gradient():
    config = DeformableSkip(name="skip").get_config()
    del config["warp_gradient"]
    assert DeformableSkip.from_config(config).warp_gradient == "exact"


def _skip_gradient(inputs, warp_sampling, warp_gradient, jit_compile=None):
    features, masks, affines = inputs
    layer = DeformableSkip(warp_sampling=warp_sampling, warp_gradient=warp_gradient)

    def gradient(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            loss = tf.reduce_sum(layer([f, masks, affines]) ** 2)
        return tape.gradient(loss, f)

    if jit_compile is not None:
        gradient = tf.function(gradient, jit_compile=jit_compile)
    return gradient(tf.constant(features)).numpy()


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_gradient_option_changes_nothing_forward(rng, warp_sampling):
    inputs = _inputs(rng, stride=2)
    inputs[2] = np.tile(np.array([1.1, 0.1, 0.0, -0.1, 0.9, 0.0, 0, 0], np.float32), (2, 10, 1))
    inputs[2][:, :, [2, 5]] = rng.uniform(-3, 3, (2, 10, 2))
    outputs = [np.asarray(DeformableSkip(warp_sampling, rule)(inputs)) for rule in ("original", "exact")]
    np.testing.assert_array_equal(outputs[0], outputs[1])
    original = _skip_gradient(inputs, warp_sampling, "original")
    assert np.abs(original - _skip_gradient(inputs, warp_sampling, "exact")).max() > 1e-2


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_original_gradient_is_each_parts_inverse_warp(rng, warp_sampling):
    """d loss / d features = sum over parts of inverse_warp(upstream * mask * [part holds the max])."""
    from dgan_tf.geometry.warp import _warp, inverse_affines

    features, masks, affines = _inputs(rng, stride=2)
    affines[:, :, [0, 4]] = rng.uniform(0.8, 1.25, (2, 10, 2))  # scalings: the two rules differ
    gradient = _skip_gradient([features, masks, affines], warp_sampling, "original")
    scaled = affines * np.array([1, 1, 0.5, 1, 1, 0.5, 1, 1], np.float32)
    warped = [np.asarray(_warp(features, scaled[:, p], warp_sampling)) * masks[:, p, ::2, ::2, None]
              for p in range(10)]
    output = np.max(warped, axis=0)
    taken = np.zeros(output.shape, bool)
    expected = np.zeros_like(features)
    for p in range(10):
        selected = (warped[p] == output) & ~taken  # ties go to the earlier part
        taken |= selected
        upstream = 2 * output * selected * masks[:, p, ::2, ::2, None]
        expected += np.asarray(_warp(upstream, inverse_affines(scaled[:, p]), warp_sampling))
    np.testing.assert_allclose(gradient, expected, atol=1e-4)
    np.testing.assert_allclose(_skip_gradient([features, masks, affines], warp_sampling, "original", jit_compile=True),
                               gradient, atol=1e-4)


def test_identity_torso_gives_features_clipped_at_zero(rng):
    features, _, _ = _inputs(rng, stride=1)
    masks = np.zeros((2, 10, 16, 8), dtype=np.float32)
    masks[:, 0] = 1.0  # torso mask: the whole image
    affines = np.tile(NO_POINT, (2, 10, 1))
    affines[:, 0] = IDENTITY
    output = np.asarray(DeformableSkip()([features, masks, affines]))
    # Every other part contributes 0 (empty mask), so the max clips negatives to 0 (the original's reduce_max:
    # pose-gan pose_transform.py:58-59 at 8693ec4).
    np.testing.assert_array_equal(output, np.maximum(features, 0))


def test_all_parts_identity_and_full_masks_keep_negatives(rng):
    features, _, _ = _inputs(rng, stride=1)
    masks = np.ones((2, 10, 16, 8), dtype=np.float32)
    affines = np.tile(IDENTITY, (2, 10, 1))
    output = np.asarray(DeformableSkip()([features, masks, affines]))
    np.testing.assert_array_equal(output, features)  # the running max starts from part 0, not from 0


def test_parts_combine_by_maximum(rng):
    features, _, _ = _inputs(rng, stride=1)
    features = np.abs(features)
    masks = np.zeros((2, 10, 16, 8), dtype=np.float32)
    masks[:, 0, :8] = 1.0  # torso: upper half
    masks[:, 3, 4:] = 1.0  # a limb: lower three quarters, shifted one column right in the source
    affines = np.tile(NO_POINT, (2, 10, 1))
    affines[:, 0] = IDENTITY
    affines[:, 3] = IDENTITY
    affines[:, 3, 2] = 1.0
    output = np.asarray(DeformableSkip()([features, masks, affines]))
    shifted = np.concatenate([features[:, :, 1:], np.zeros_like(features[:, :, :1])], axis=2)
    expected = np.zeros_like(features)
    expected[:, :8] = features[:, :8]
    expected[:, 4:] = np.maximum(expected[:, 4:], shifted[:, 4:])
    np.testing.assert_allclose(output, expected)


def test_stride_divides_translations_and_subsamples_masks(rng):
    stride = 4
    features, _, _ = _inputs(rng, size=(32, 16), stride=stride)  # (2, 8, 4, 3)
    features = np.abs(features) + 1.0
    masks = np.zeros((2, 10, 32, 16), dtype=np.float32)
    masks[:, 0, ::stride, ::stride] = 1.0  # only the pixels the legacy nearest resize picks
    affines = np.tile(NO_POINT, (2, 10, 1))
    affines[:, 0] = IDENTITY
    affines[:, 0, 2] = 2.0 * stride  # 8 full-resolution pixels = 2 feature columns at stride 4
    output = np.asarray(DeformableSkip()([features, masks, affines]))
    expected = np.zeros_like(features)
    expected[:, :, :2] = features[:, :, 2:]
    np.testing.assert_array_equal(output, expected)
    masks_off = np.zeros_like(masks)
    masks_off[:, 0, 1::stride, 1::stride] = 1.0  # pixels the resize never picks
    assert np.all(np.asarray(DeformableSkip()([features, masks_off, affines])) == 0)


def test_gradients_reach_features_only(rng):
    features, masks, affines = (tf.constant(x) for x in _inputs(rng))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([features, masks, affines])
        loss = tf.reduce_sum(DeformableSkip(warp_sampling="bilinear")([features, masks, affines]) ** 2)
    assert np.abs(tape.gradient(loss, features).numpy()).sum() > 0
    for other in (masks, affines):
        gradient = tape.gradient(loss, other)
        assert gradient is None or not np.any(gradient.numpy())


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_xla_compiles_with_the_same_result(rng, warp_sampling):
    inputs = [tf.constant(x) for x in _inputs(rng)]
    layer = DeformableSkip(warp_sampling=warp_sampling)
    eager = layer(inputs).numpy()
    np.testing.assert_allclose(tf.function(layer, jit_compile=True)(inputs).numpy(), eager, atol=1e-5)


def test_bad_arguments_raise_clear_errors(rng):
    features, masks, affines = _inputs(rng)
    with pytest.raises(ValueError, match="warp_sampling"):
        DeformableSkip(warp_sampling="cubic")
    with pytest.raises(ValueError, match="stride"):
        DeformableSkip()([features, masks[:, :, :15], affines])
    with pytest.raises(ValueError, match="stride"):
        DeformableSkip()([features, masks[:, :, :, :4], affines])  # stride 2 rows, 1 column
    with pytest.raises(ValueError, match="parts"):
        DeformableSkip()([features, masks, affines[:, :9]])


def _geometry_model(image_size):
    source = keras.Input((18, 2), name="keypoints_source_yx")
    target = keras.Input((18, 2), name="keypoints_target_yx")
    appearance = keras.Input((image_size[0] // 2, image_size[1] // 2, 3), name="appearance")
    masks, affines = PartGeometry(image_size)([source, target])
    features = keras.layers.Conv2D(4, 3, padding="same")(appearance)
    skip = DeformableSkip()([features, masks, affines])
    return keras.Model([source, target, appearance], [skip, masks, affines])


def test_part_geometry_in_a_functional_model_and_keras_file(rng, tmp_path):
    image_size = (32, 16)
    model = _geometry_model(image_size)
    source = np.stack([BASE_POSE / 4, BASE_POSE / 4 + 1]).astype(np.float32)
    target = np.stack([BASE_POSE / 4 + 0.5, BASE_POSE / 4]).astype(np.float32)
    target[1, 3] = -1
    appearance = rng.normal(size=(2, 16, 8, 3)).astype(np.float32)
    skip, masks, affines = (np.asarray(v) for v in model([source, target, appearance]))
    np.testing.assert_array_equal(masks, np.asarray(part_masks(target, image_size)))
    np.testing.assert_allclose(affines, np.asarray(part_affines(source, target)), atol=1e-6)
    assert skip.shape == (2, 16, 8, 4) and np.any(skip > 0)
    path = tmp_path / "geometry.keras"
    model.save(path)
    reloaded = keras.saving.load_model(path)
    for before, after in zip((skip, masks, affines), reloaded([source, target, appearance])):
        np.testing.assert_allclose(np.asarray(after), before, atol=1e-6)


def test_part_geometry_config_and_validation():
    layer = check_config_round_trip(PartGeometry((128, 64), name="geometry"))
    assert layer.image_size == (128, 64) and layer.get_config()["image_size"] == [128, 64]
    assert layer.compute_output_shape([(None, 18, 2), (None, 18, 2)]) == [(None, 10, 128, 64), (None, 10, 8)]
    with pytest.raises(ValueError, match="image_size"):
        PartGeometry((128,))
    with pytest.raises(ValueError, match="image_size"):
        PartGeometry((-1, 64))
