"""Hostile keypoints where they enter a model: the sanitising rule, the KeypointGuard layer, and property-based
fuzzing (hypothesis) of the geometry and of a tiny generator with random, missing, collinear, coincident, huge,
NaN, Inf and float64 keypoint sets: no NaN/Inf in masks, affines, images or gradients, and one bad sample never
changes the outputs or gradients of the others in its batch.
"""

import numpy as np
import pytest

from tests.layer_checks import check_layer

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

SIZE = (128, 64)
MARGIN = 100  # KEYPOINT_MARGIN: joints up to 100 image sizes beyond a border are kept
HOSTILE_VALUES = (np.nan, np.inf, -np.inf, 1e36, -1e36, 1e300, -1e300, 3.4e38, -1.0, 0.0, 1e-45, -0.5, 2 ** 31,
                  -(2 ** 31), 127.5, 191.9, -128.0, -64.1, 1e7, 6463.9, -6400.0, 12927.9, -12800.0, 12928.0, -6400.1)


def valid_pose(rng, count):
    """(count, 18, 2) poses in the frame (a few joints missing)."""
    poses = np.stack([rng.uniform(5, SIZE[0] - 5, (count, 18)), rng.uniform(5, SIZE[1] - 5, (count, 18))], -1)
    poses[rng.uniform(size=(count, 18)) < 0.1] = -1
    return poses.astype(np.float32)


@st.composite
def keypoint_sets(draw, batch=None):
    """(B, 18, 2) keypoints of one of several hostile layouts, float32 or float64."""
    batch = batch or draw(st.integers(1, 3))
    dtype = draw(st.sampled_from(["float32", "float64"]))
    layout = draw(st.sampled_from(["random", "frame", "far", "missing", "collinear", "coincident", "extreme",
                                   "mixed"]))
    seed = draw(st.integers(0, 2 ** 32 - 1))
    rng = np.random.default_rng(seed)
    shape = (batch, 18, 2)
    if layout == "random":
        keypoints = draw(hnp.arrays(np.float64, shape, elements=st.floats(allow_nan=True, allow_infinity=True,
                                                                         width=64)))
    elif layout == "frame":
        keypoints = np.stack([rng.uniform(-1.5 * SIZE[0], 2.5 * SIZE[0], shape[:2]),
                              rng.uniform(-1.5 * SIZE[1], 2.5 * SIZE[1], shape[:2])], -1)
    elif layout == "far":  # out to the margin and a little beyond, at every scale
        magnitude = np.exp(rng.uniform(0, np.log(1.2 * (MARGIN + 1)), shape)) * np.array(SIZE)
        keypoints = np.where(rng.uniform(size=shape) < 0.5, -1.0, 1.0) * magnitude
        in_frame = rng.uniform(size=shape[:2]) < 0.5  # the other joints of a person in the frame
        keypoints[in_frame] = valid_pose(rng, batch)[in_frame]
    elif layout == "missing":
        keypoints = np.full(shape, -1.0)
        keypoints[rng.uniform(size=shape[:2]) < 0.2] = [10.0, 10.0]
    elif layout == "collinear":
        t = rng.uniform(0, 1, shape[:2])
        keypoints = np.stack([5 + 100 * t, 5 + 50 * t], -1) if rng.uniform() < 0.5 else np.stack(
            [5 + 100 * t, np.full_like(t, 20.0)], -1)
    elif layout == "coincident":
        keypoints = np.broadcast_to(rng.uniform(0, 60, (batch, 1, 2)), shape).copy()
    elif layout == "extreme":
        keypoints = rng.choice(np.array(HOSTILE_VALUES), size=shape)
    else:  # a valid pose with a few hostile joints
        keypoints = valid_pose(rng, batch).astype(np.float64)
        bad = rng.uniform(size=shape) < 0.15
        keypoints[bad] = rng.choice(np.array(HOSTILE_VALUES), size=int(bad.sum()))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(keypoints, dtype=dtype)


# ---- the rule


def test_sanitize_rule():
    from keras import ops

    from dgan_tf.geometry.keypoints import sanitize_keypoints

    keypoints = np.array([[
        [10, 20],  # kept
        [np.nan, 5], [5, np.inf], [-np.inf, 3],  # non-finite: missing
        [1e36, 5], [5, -1e300],  # far out (and beyond float32): missing
        [-1, 7], [7, -1],  # one coordinate missing: both
        [-12800, -6400], [12927.9, 6463.9],  # within 100 image sizes of the frame: kept (cropped people)
        [-12800.1, 0], [12928, 0], [0, 6464],  # beyond: missing
        [-1, -1], [0, 0], [127, 63], [0.5, 1e-30], [3e38, 3e38]]], dtype=np.float64)
    result = ops.convert_to_numpy(sanitize_keypoints(keypoints, SIZE))
    assert result.dtype == np.float32
    missing = np.all(result == -1, axis=-1)[0]
    assert missing.tolist() == [False, True, True, True, True, True, True, True, False, False, True, True, True,
                                True, False, False, False, True]
    kept = ~missing
    np.testing.assert_array_equal(result[0][kept], keypoints[0][kept].astype(np.float32))
    ints = ops.convert_to_numpy(sanitize_keypoints(np.array([[[5, 6]] * 17 + [[2 ** 40, 3]]]), SIZE))
    assert ints[0, 0].tolist() == [5, 6] and ints[0, 17].tolist() == [-1, -1]


HOSTILE_SET = np.array([[[10, 20], [np.nan, 5], [5, np.inf], [1e36, 5], [-1, 7], [-128, -64], [12928, 0]]
                        + [[30, 30]] * 11], dtype=np.float64)
EXPECTED_MISSING = [False, True, True, True, True, False, True] + [False] * 11


def test_sanitize_uses_keras_ops_only_and_runs_under_xla():
    import inspect
    import re

    import tensorflow as tf

    from dgan_tf.geometry import keypoints as keypoints_module
    from dgan_tf.geometry.keypoints import sanitize_keypoints
    from dgan_tf.layers import keypoint_guard

    for module in (keypoints_module, keypoint_guard):
        source = inspect.getsource(module)
        assert "import tensorflow" not in source and not re.search(r"\btf\.", source), module.__name__
    for dtype in (np.float64, np.float32):
        with np.errstate(over="ignore"):
            keypoints = HOSTILE_SET.astype(dtype)
        compiled = tf.function(lambda k: sanitize_keypoints(k, SIZE), jit_compile=True)(keypoints).numpy()
        assert np.all(compiled == -1, axis=-1)[0].tolist() == EXPECTED_MISSING


JAX_SCRIPT = r"""
import json, sys
import numpy as np
import jax
from dgan_tf.geometry.keypoints import sanitize_keypoints
keypoints = np.array(json.loads(sys.argv[1]), dtype=np.float32)
result = np.asarray(jax.jit(lambda k: sanitize_keypoints(k, (128, 64)))(keypoints))
print("RESULT" + json.dumps(np.all(result == -1, axis=-1)[0].tolist()))
"""


@pytest.mark.slow
def test_sanitize_runs_under_jax_jit():
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT))
    values = json.dumps(HOSTILE_SET.tolist())  # Python's json writes and reads NaN and Infinity
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, values], env=env, capture_output=True, text=True,
                          timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.split("RESULT", 1)[1]) == EXPECTED_MISSING


def test_the_margin_is_the_default_and_keeps_the_originals_masks_of_far_joints(annotations_real):
    """A knee in the frame and its ankle 260 px below (128x64): the original draws an 870-pixel lower-leg mask
    (dgan_tf.geometry.reference, the original's per-pair algorithm). Kept up to 100 image sizes, where its masks
    are still the original's; beyond, the ankle is missing and the lower leg draws no mask."""
    from dgan_tf.data.annotations import read_annotations
    from dgan_tf.geometry import reference
    from dgan_tf.geometry.keypoints import KEYPOINT_MARGIN, R_ANKLE, R_KNEE, sanitize_keypoints
    from dgan_tf.geometry.parts import part_masks

    assert KEYPOINT_MARGIN == MARGIN
    keypoints = read_annotations(annotations_real / "market-annotation-test.csv").get("0764_c5s2_075327_04.jpg")
    assert keypoints[R_KNEE].tolist() == [96, 28] and keypoints[R_ANKLE].tolist() == [-1, -1]
    poses = np.repeat(keypoints[None].astype(np.float64), 4, axis=0)
    poses[:, R_ANKLE] = [[356, 28], [356, 6463], [12927, 28], [12928, 28]]  # the last one beyond the margin
    masks = np.asarray(part_masks(sanitize_keypoints(poses, SIZE), SIZE))
    for pose, mask in zip(poses[:3], masks):
        expected = reference.part_masks(pose, SIZE, reference.grid_points_in_poly_crossing)
        np.testing.assert_array_equal(mask, expected)
    assert masks[0, 4].sum() == 870 and masks[1, 4].sum() > 0 and masks[2, 4].sum() > 0  # the right lower leg
    assert masks[3, 4].sum() == 0
    old_margin = np.asarray(part_masks(sanitize_keypoints(poses[:1], SIZE, margin=1.0), SIZE))
    assert old_margin[0, 4].sum() == 0  # what the guard did with one image size: no lower leg at all


def test_keypoint_guard_layer_checks(tmp_path):
    from dgan_tf.layers import KeypointGuard

    layer = KeypointGuard(SIZE, margin=0.5, name="guard")
    assert layer.get_config()["margin"] == 0.5 and layer.get_config()["image_size"] == [128, 64]
    keypoints = valid_pose(np.random.default_rng(0), 2)
    keypoints[1, 3] = [np.nan, 4]
    out = check_layer(layer, keypoints, tmp_path, expected_output_shapes=(2, 18, 2))[0]
    assert out[1, 3].tolist() == [-1, -1] and np.isfinite(out).all()
    with pytest.raises(ValueError, match="margin"):
        KeypointGuard(SIZE, margin=-1)


def test_models_guard_both_keypoint_inputs():
    from dgan_tf.models.discriminator import build_discriminator
    from dgan_tf.models.generator import build_generator

    for model in (build_generator(SIZE, width=0.0625), build_discriminator(SIZE, width=0.0625)):
        guards = [layer for layer in model.layers if type(layer).__name__ == "KeypointGuard"]
        assert sorted(g.name for g in guards) == ["source_keypoint_guard", "target_keypoint_guard"]
        # Every consumer of a keypoint input is a guard.
        for name in ("source_keypoints", "target_keypoints"):
            consumers = [node.operation for node in model.get_layer(name)._outbound_nodes]
            assert consumers and all(type(c).__name__ == "KeypointGuard" for c in consumers), (model.name, name)


# ---- the geometry


@pytest.fixture(scope="module")
def geometry():
    """Sanitise both keypoint sets, then masks, affines, heatmaps and the PartGeometry layer, in one tf.function."""
    import tensorflow as tf

    from dgan_tf.geometry.heatmaps import pose_heatmaps
    from dgan_tf.geometry.keypoints import sanitize_keypoints
    from dgan_tf.geometry.parts import part_affines, part_masks
    from dgan_tf.layers import PartGeometry

    layer = PartGeometry(SIZE)

    # float64 in (float32 keypoint sets convert exactly): one trace serves every example.
    spec = tf.TensorSpec((None, 18, 2), tf.float64)

    @tf.function(input_signature=[spec, spec])
    def run(source, target):
        clean_source, clean_target = sanitize_keypoints(source, SIZE), sanitize_keypoints(target, SIZE)
        layer_masks, layer_affines = layer([clean_source, clean_target])
        return (clean_source, clean_target, part_masks(clean_target, SIZE), part_affines(clean_source, clean_target),
                pose_heatmaps(clean_target, SIZE), layer_masks, layer_affines)

    return run


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(source=keypoint_sets(batch=2), target=keypoint_sets(batch=2))
def test_geometry_of_sanitized_keypoints_is_finite(geometry, source, target):
    clean_source, clean_target, masks, affines, heatmaps, layer_masks, layer_affines = (
        x.numpy() for x in geometry(source.astype(np.float64), target.astype(np.float64)))
    for clean in (clean_source, clean_target):
        missing = np.all(clean == -1, axis=-1)
        assert np.all((clean[..., 0] >= -MARGIN * SIZE[0]) & (clean[..., 0] < (MARGIN + 1) * SIZE[0]) | missing)
        assert np.all((clean[..., 1] >= -MARGIN * SIZE[1]) & (clean[..., 1] < (MARGIN + 1) * SIZE[1]) | missing)
    assert np.isin(masks, (0.0, 1.0)).all()
    assert np.isfinite(affines).all() and np.isfinite(heatmaps).all()
    np.testing.assert_array_equal(layer_masks, masks)
    np.testing.assert_array_equal(layer_affines, affines)


# ---- the generator


@pytest.fixture(scope="module")
def generator():
    import keras

    from dgan_tf.models.generator import build_generator

    keras.utils.set_random_seed(0)
    return build_generator(SIZE, width=0.0625)


def forward_backward(generator, images, source, target, others=(0, 2)):
    """Outputs, the gradient of the others' loss w.r.t. the images and the weights, and the whole batch's weight
    gradient (inference mode: no dropout, so each sample's output depends on its own inputs only)."""
    import tensorflow as tf

    images, source, target = (tf.convert_to_tensor(x) for x in (images, source, target))
    weights = generator.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(images)
        out = generator([images, source, target], training=False)
        loss_others = tf.add_n([tf.reduce_mean(tf.square(out[i])) for i in others])
        loss_all = tf.reduce_mean(tf.square(out))
    image_grad = tape.gradient(loss_others, images).numpy()
    weight_grad = [g.numpy() for g in tape.gradient(loss_others, weights)]
    all_grad = [g.numpy() for g in tape.gradient(loss_all, weights)]
    return out.numpy(), image_grad, weight_grad, all_grad


def check_isolated(generator, bad_source, bad_target, seed=0):
    """Batch [good, BAD, good] against [good, clean, good]: every value finite, the good samples unchanged."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1, 1, (3, *SIZE, 3)).astype(np.float32)
    source, target = valid_pose(rng, 3), valid_pose(rng, 3)
    with np.errstate(over="ignore", invalid="ignore"):
        hostile_source, hostile_target = source.astype(bad_source.dtype), target.astype(bad_target.dtype)
    hostile_source[1], hostile_target[1] = bad_source, bad_target
    hostile = forward_backward(generator, images, hostile_source, hostile_target)
    clean = forward_backward(generator, images, source, target)
    out, image_grad, weight_grad, all_grad = hostile
    assert np.isfinite(out).all(), "generated image not finite"
    assert np.isfinite(image_grad).all()
    assert all(np.isfinite(g).all() for g in weight_grad + all_grad), "weight gradient not finite"
    for i in (0, 2):
        np.testing.assert_allclose(out[i], clean[0][i], atol=1e-6)
        np.testing.assert_allclose(image_grad[i], clean[1][i], atol=1e-9, rtol=1e-5)
    for g, reference in zip(weight_grad, clean[2]):
        np.testing.assert_allclose(g, reference, atol=1e-9, rtol=1e-4)


def test_landed_failures_huge_and_nan_keypoints_in_one_sample(generator):
    """1e36 overflowed the float32 cast and crashed the warp's gather; one NaN joint made every gradient NaN."""
    rng = np.random.default_rng(1)
    huge = valid_pose(rng, 1)[0].astype(np.float64)
    huge[[2, 5, 8, 11]] = [[1e36, 3.0], [4.0, -1e36], [1e36, 1e36], [20.0, 1e36]]
    check_isolated(generator, huge, huge)
    nan = valid_pose(rng, 1)[0]
    nan[1] = [np.nan, 10.0]
    check_isolated(generator, nan, valid_pose(rng, 1)[0])


def test_a_pose_far_outside_the_frame_keeps_every_gradient_finite(generator):
    """Found by the fuzz: the only target joints lie within the margin but far outside the frame, so the target
    heatmap is ~1e-26; the variance in the pose stream's first norm underflows to 0 while x - mean does not, and
    sqrt's infinite gradient at 0 made every weight gradient of the batch NaN."""
    source, target = np.full((18, 2), -1.0), np.full((18, 2), -1.0)
    source[2], source[9] = [0.0, 0.0], [-64.1, 127.5]
    target[9], target[14] = [-64.1, 1.4e-45], [191.9, 0.0]
    check_isolated(generator, source, target)
    check_isolated(generator, np.full((18, 2), np.nan), np.full((18, 2), np.inf))  # every joint invalid
    far = valid_pose(np.random.default_rng(2), 1)[0].astype(np.float64)  # limbs out to the margin, torso included
    far[[2, 9, 10, 12, 13]] = [[-12800.0, 6463.9], [12927.9, -6400.0], [-12800.0, -6400.0], [356.0, 28.0],
                               [100.0, 6000.0]]
    check_isolated(generator, far, valid_pose(np.random.default_rng(3), 1)[0])
    check_isolated(generator, valid_pose(np.random.default_rng(4), 1)[0], far)


@pytest.mark.slow
@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(source=keypoint_sets(batch=1), target=keypoint_sets(batch=1))
def test_generator_fuzz_one_bad_sample_never_reaches_the_others(generator, source, target):
    check_isolated(generator, source[0], target[0])
