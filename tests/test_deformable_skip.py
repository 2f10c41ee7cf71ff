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
    layer = check_config_round_trip(DeformableSkip(warp_sampling="bilinear", warp_gradient="exact", part_max="first",
                                                   name="skip_1"))
    assert (layer.warp_sampling, layer.warp_gradient, layer.part_max) == ("bilinear", "exact", "first")
    assert set(layer.get_config()) >= {"warp_sampling", "warp_gradient", "part_max", "name"}
    assert (DeformableSkip().warp_gradient, DeformableSkip().part_max) == ("original", "split")


def test_files_saved_before_the_gradient_options_keep_what_they_trained_with():
    config = DeformableSkip(name="skip").get_config()
    del config["warp_gradient"], config["part_max"]
    layer = DeformableSkip.from_config(config)
    assert (layer.warp_gradient, layer.part_max) == ("exact", "first")


def _skip_gradient(inputs, warp_sampling, warp_gradient, jit_compile=None, part_max="split", upstream=None):
    """d sum(upstream * skip) / d features (upstream = 2 * skip, the gradient of the squared output, by default)."""
    features, masks, affines = inputs
    layer = DeformableSkip(warp_sampling=warp_sampling, warp_gradient=warp_gradient, part_max=part_max)

    def gradient(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            out = layer([f, masks, affines])
            loss = tf.reduce_sum(out ** 2 if upstream is None else out * upstream)
        return tape.gradient(loss, f)

    if jit_compile is not None:
        gradient = tf.function(gradient, jit_compile=jit_compile)
    return gradient(tf.constant(features)).numpy()


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_gradient_options_change_nothing_forward(rng, warp_sampling):
    inputs = _inputs(rng, stride=2)
    inputs[2] = np.tile(np.array([1.1, 0.1, 0.0, -0.1, 0.9, 0.0, 0, 0], np.float32), (2, 10, 1))
    inputs[2][:, :, [2, 5]] = rng.uniform(-3, 3, (2, 10, 2))
    outputs = [np.asarray(DeformableSkip(warp_sampling, rule, part_max)(inputs))
               for rule in ("original", "exact") for part_max in ("split", "first")]
    for output in outputs[1:]:
        np.testing.assert_array_equal(output, outputs[0])
    original = _skip_gradient(inputs, warp_sampling, "original")
    assert np.abs(original - _skip_gradient(inputs, warp_sampling, "exact")).max() > 1e-2


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_first_part_max_gives_a_tie_to_the_earlier_part(rng, warp_sampling):
    """part_max="first" (what dgan_tf trained with before the option): d loss / d features = sum over parts of
    inverse_warp(upstream * mask * [part holds the max and no earlier part does])."""
    from dgan_tf.geometry.warp import _warp, inverse_affines

    features, masks, affines = _inputs(rng, stride=2)
    affines[:, :, [0, 4]] = rng.uniform(0.8, 1.25, (2, 10, 2))  # scalings: the two rules differ
    gradient = _skip_gradient([features, masks, affines], warp_sampling, "original", part_max="first")
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
    np.testing.assert_allclose(_skip_gradient([features, masks, affines], warp_sampling, "original", jit_compile=True,
                                              part_max="first"), gradient, atol=1e-4)


def _original_skip_gradient(features, masks, affines, upstream, without_gradient=()):
    """The original's AffineTransformLayer (pose-gan pose_transform.py:36-59 at 8693ec4) in TensorFlow ops: each part
    warped by ImageProjectiveTransformV3 (nearest, 0 outside; its registered gradient is TF 1.x's inverse warp),
    masked by the mask's every s-th pixel, the ten stacked and reduced by reduce_max; d sum(upstream * out) / d
    features by TensorFlow's own gradients. Parts in `without_gradient` keep their forward but pass no gradient."""
    features = tf.constant(features)
    stride = masks.shape[2] // features.shape[1]
    with tf.GradientTape() as tape:
        tape.watch(features)
        warped = []
        for part in range(affines.shape[1]):
            transform = affines[:, part] / np.array([1, 1, stride, 1, 1, stride, 1, 1], np.float32)
            part_warp = tf.raw_ops.ImageProjectiveTransformV3(
                images=features, transforms=transform, output_shape=features.shape[1:3], fill_value=0.0,
                interpolation="NEAREST", fill_mode="CONSTANT")
            if part in without_gradient:
                part_warp = tf.stop_gradient(part_warp)
            warped.append(part_warp * masks[:, part, ::stride, ::stride, None])
        loss = tf.reduce_sum(tf.reduce_max(tf.stack(warped, axis=-2), axis=-2) * upstream)
    return tape.gradient(loss, features).numpy()


def test_split_part_max_shares_ties_as_the_originals_reduce_max(rng):
    """Deliberate ties: features constant on 2x2 blocks, read by parts shifted by one row or column (ties between
    parts that read different pixels), beside parts whose masks are empty (ties at 0)."""
    blocks = np.abs(rng.normal(size=(2, 4, 2, 4))).astype(np.float32)
    features = np.repeat(np.repeat(blocks, 2, axis=1), 2, axis=2)  # (2, 8, 4, 4), levels of stride 2
    masks = np.zeros((2, 10, 16, 8), np.float32)
    masks[:, 1:4] = 1.0
    masks[:, 4, :8] = rng.uniform(size=(2, 8, 8)) > 0.5
    affines = np.tile(IDENTITY, (2, 10, 1))
    affines[:, 2, 5] = 2.0  # reads one row down at stride 2
    affines[:, 3, 2] = 2.0  # one column right
    upstream = rng.normal(size=features.shape).astype(np.float32)
    expected = _original_skip_gradient(features, masks, affines, upstream)
    split = _skip_gradient([features, masks, affines], "nearest", "original", upstream=upstream)
    np.testing.assert_allclose(split, expected, atol=1e-6)
    first = _skip_gradient([features, masks, affines], "nearest", "original", part_max="first", upstream=upstream)
    assert np.abs(first - expected).max() > 0.1  # there the earlier part takes a whole tie


def test_split_part_max_is_the_originals_on_real_market_pairs(annotations_real, rng):
    """Real Market geometry at the four warped levels: the layer's gradient to the features is the original
    layer's (reduce_max over the stacked parts) wherever no part's inverse transform lands on a .5 rounding tie."""
    from dgan_tf.geometry import reference
    from dgan_tf.geometry.warp import inverse_affines
    from test_geometry import _sample_pairs
    from test_warp import _far_from_rounding_ties

    source, target = _sample_pairs(annotations_real, "market-annotation-test.csv", "market-pairs-test.csv", 4, seed=3)
    masks = np.stack([reference.part_masks(t, (128, 64), reference.grid_points_in_poly_crossing) for t in target])
    affines = np.stack([reference.part_affines(s, t) for s, t in zip(source, target)]).astype(np.float32)
    for stride in (1, 2, 4, 8):
        features = rng.normal(size=(4, 128 // stride, 64 // stride, 4)).astype(np.float32)
        upstream = rng.normal(size=features.shape).astype(np.float32)
        expected = _original_skip_gradient(features, masks, affines, upstream)
        split = _skip_gradient([features, masks, affines], "nearest", "original", upstream=upstream)
        first = _skip_gradient([features, masks, affines], "nearest", "original", part_max="first", upstream=upstream)
        scaled = affines / np.array([1, 1, stride, 1, 1, stride, 1, 1], np.float32)
        keep = np.all([_far_from_rounding_ties(np.asarray(inverse_affines(scaled[:, p])), *features.shape[1:3], 1e-4)
                       for p in range(10)], axis=0)  # (B, h, w)
        assert keep.mean() > 0.99
        np.testing.assert_allclose(split[keep], expected[keep], atol=1e-5)
        apart = np.linalg.norm((first - expected)[keep]) / np.linalg.norm(expected[keep])
        assert apart > 0.02, f"stride {stride}: 'first' only {apart:.4f} from the original"


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


def test_a_singular_part_transform_passes_no_gradient_where_the_original_raised(rng):
    """A collapsed source limb (knee and ankle on one pixel) gave the original a transform that is invertible in
    float64 (its only check) but singular in float32: TF's warp gradient raised InvalidArgumentError and the trainer
    skipped the step (pose-gan gan/train.py:77-81, submodule a4aa9a3). Here that part keeps its forward and passes no
    gradient (its inverse is no_point's), every value finite; the other parts' gradients are the original's."""
    features, masks, _ = _inputs(rng, stride=2)
    affines = np.tile(IDENTITY, (2, 10, 1))
    affines[:, :, [2, 5]] = rng.integers(-3, 4, (2, 10, 2))
    # reference.part_affines of the collapsed right lower leg, in float32: two equal rows, det exactly 0
    affines[:, 4, :6] = [0.13792911, 0.0055171642, 21.917299, 0.13792911, 0.0055171642, 85.917297]
    affines[:, 5, :6] = [0.5, 0.25, 2.0, 0.5, 0.25, 3.0]  # singular too; its adjugate would sample inside the image
    masks[:, 4:6] = 1.0  # both hold the max at many pixels
    upstream = rng.normal(size=features.shape).astype(np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not invertible"):
        _original_skip_gradient(features, masks, affines, upstream)
    expected = _original_skip_gradient(features, masks, affines, upstream, without_gradient=(4, 5))
    for warp_gradient in ("original", "exact"):
        gradient = _skip_gradient([features, masks, affines], "nearest", warp_gradient, upstream=upstream)
        assert np.all(np.isfinite(gradient))
    np.testing.assert_allclose(_skip_gradient([features, masks, affines], "nearest", "original", upstream=upstream),
                               expected, atol=1e-6)
