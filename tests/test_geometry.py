"""Part masks and affines (dgan_tf.geometry) against the per-pair numpy/scikit-image reference."""

import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from dgan_tf.geometry import reference
from dgan_tf.geometry.parts import part_affines, part_masks
from dgan_tf.geometry.keypoints import (
    L_ANKLE, L_ELBOW, L_HIP, L_SHOULDER, L_WRIST, R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, R_WRIST,
)

NO_POINT = np.array([1, 0, 1000, 0, 1, 1000, 0, 0], dtype=np.float32)
MARKET_SIZE = (128, 64)
FASHION_SIZE = (256, 256)

# A standing person at 128x64, (y, x), all 18 joints visible.
BASE_POSE = np.array([
    [15, 32], [28, 32], [30, 22], [48, 20], [64, 19], [30, 42], [48, 44], [64, 45], [66, 26],
    [90, 26], [115, 25], [66, 38], [90, 38], [115, 39], [12, 30], [12, 34], [13, 27], [13, 37],
], dtype=np.float32)


def _read_keypoints(path):
    frame = pd.read_csv(path, sep=":")
    return {
        row["name"]: np.stack([json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])], axis=-1)
        for _, row in frame.iterrows()
    }


def _sample_pairs(folder, annotation_file, pairs_file, count, seed):
    keypoints = _read_keypoints(folder / annotation_file)
    pairs = pd.read_csv(folder / pairs_file)
    chosen = pairs.iloc[np.sort(np.random.default_rng(seed).choice(len(pairs), count, replace=False))]
    source = np.stack([keypoints[name] for name in chosen["from"]]).astype(np.float32)
    target = np.stack([keypoints[name] for name in chosen["to"]]).astype(np.float32)
    return source, target


@pytest.fixture(scope="module", params=[
    ("market-annotation-test.csv", "market-pairs-test.csv", MARKET_SIZE, 300),
    ("fasion-annotation-test.csv", "fashion-pairs-test.csv", FASHION_SIZE, 250),
], ids=["market", "fashion"])
def real_geometry(request, annotations_real):
    """Batched results and reference results on real test pairs (one batched call per dataset)."""
    annotation_file, pairs_file, size, count = request.param
    source, target = _sample_pairs(annotations_real, annotation_file, pairs_file, count, seed=0)
    masks = np.asarray(part_masks(target, size))
    affines = np.asarray(part_affines(source, target))
    reference_masks = np.stack([reference.part_masks(t, size) for t in target])
    reference_affines = np.stack([reference.part_affines(s, t) for s, t in zip(source, target)])
    return dict(source=source, target=target, size=size, masks=masks, affines=affines,
                reference_masks=reference_masks, reference_affines=reference_affines)


def _iou_per_part(masks, reference_masks):
    intersection = (masks * reference_masks).sum(axis=(2, 3))
    union = np.maximum(masks, reference_masks).sum(axis=(2, 3))
    return np.where(union > 0, intersection / np.maximum(union, 1), 1.0).mean(axis=0)


def test_masks_match_reference_on_real_pairs(real_geometry):
    masks = real_geometry["masks"]
    assert masks.dtype == np.float32 and masks.shape[1:] == (10,) + real_geometry["size"]
    assert np.all((masks == 0) | (masks == 1))
    iou = _iou_per_part(masks, real_geometry["reference_masks"])
    assert np.all(iou >= 0.99), iou
    # Torso and head are exact; limbs differ only where current scikit-image counts edge points.
    np.testing.assert_array_equal(masks[:, :2], real_geometry["reference_masks"][:, :2])


def test_limb_masks_follow_the_crossing_rule_exactly(real_geometry):
    """Limb masks equal scikit-image 0.13's even-odd crossing rule pixel for pixel.

    The original's grid_points_in_poly: pose-gan pose_transform.py:152 at 8693ec4.
    """
    masks, size = real_geometry["masks"], real_geometry["size"]
    differing = 0
    for sample, keypoints_yx in enumerate(real_geometry["target"][:60]):
        kp = reference.named_keypoints(keypoints_yx)
        st = reference.torso_scale(kp)
        for limb, (start, end, extension, _) in enumerate(reference.LIMBS):
            expected = np.zeros(size, dtype=bool)
            if start in kp and end in kp:
                polygon = reference.limb_polygon(kp[start], kp[end], st, extension)
                expected = reference.grid_points_in_poly_crossing(size, polygon[:, ::-1])
            differing += int(np.sum(expected != masks[sample, limb + 2].astype(bool)))
    assert differing <= 1e-5 * masks[:60, 2:].size


def test_affines_match_reference_on_real_pairs(real_geometry):
    affines, expected = real_geometry["affines"], real_geometry["reference_affines"]
    assert affines.dtype == np.float32 and affines.shape[1:] == (10, 8)
    expected_no_point = np.all(expected == NO_POINT, axis=-1)
    np.testing.assert_array_equal(np.all(affines == NO_POINT, axis=-1), expected_no_point)
    np.testing.assert_allclose(affines, expected, rtol=0, atol=1e-3)
    # The torso fit is total least squares: some real pairs must not be exact affine fits.
    assert not np.all(expected_no_point[:, 2:]), "expected some limb fits"


def test_batched_result_does_not_depend_on_the_batch(real_geometry):
    source, target, size = real_geometry["source"][:5], real_geometry["target"][:5], real_geometry["size"]
    for index in (0, 4):
        np.testing.assert_array_equal(np.asarray(part_masks(target[index:index + 1], size))[0], real_geometry["masks"][index])
        np.testing.assert_allclose(np.asarray(part_affines(source[index:index + 1], target[index:index + 1]))[0],
                                   real_geometry["affines"][index], atol=1e-5)


def _compute(source, target, size=MARKET_SIZE):
    masks = np.asarray(part_masks(target[None], size))[0]
    affines = np.asarray(part_affines(source[None], target[None]))[0]
    assert np.all(np.isfinite(masks)) and np.all(np.isfinite(affines))
    return masks, affines


def _is_no_point(affine):
    return np.array_equal(affine, NO_POINT)


def test_translation_gives_identity_plus_shift_for_every_part():
    target = BASE_POSE
    source = BASE_POSE + np.array([3.0, -2.0], dtype=np.float32)  # (dy, dx)
    _, affines = _compute(source, target)
    expected = np.array([1, 0, -2, 0, 1, 3, 0, 0], dtype=np.float32)
    np.testing.assert_allclose(affines, np.tile(expected, (10, 1)), atol=1e-4)


def test_masks_of_the_base_pose_are_exact():
    masks, _ = _compute(BASE_POSE, BASE_POSE)
    np.testing.assert_array_equal(masks, reference.part_masks(BASE_POSE, MARKET_SIZE))
    assert np.all(masks[0] == 1) and all(masks[p].sum() > 0 for p in range(10))


def test_limb_missing_in_target_is_no_point_and_empty():
    target = BASE_POSE.copy()
    target[R_ELBOW] = -1
    masks, affines = _compute(BASE_POSE, target)
    for part in (6, 8):  # right upper arm, right forearm
        assert _is_no_point(affines[part]) and masks[part].sum() == 0
    np.testing.assert_allclose(affines, reference.part_affines(BASE_POSE, target), atol=1e-4)


def test_limb_missing_in_source_uses_the_mirrored_limb():
    source = BASE_POSE + np.array([2.0, 1.0], dtype=np.float32)
    source[R_ELBOW] = -1
    _, affines = _compute(source, BASE_POSE)
    assert not _is_no_point(affines[6]) and not _is_no_point(affines[8])
    np.testing.assert_allclose(affines, reference.part_affines(source, BASE_POSE), atol=1e-4)


def test_limb_missing_in_source_and_mirror_is_no_point():
    source = BASE_POSE.copy()
    source[[R_ELBOW, L_ELBOW]] = -1
    _, affines = _compute(source, BASE_POSE)
    assert all(_is_no_point(affines[part]) for part in (6, 7, 8, 9))
    assert not any(_is_no_point(affines[part]) for part in (0, 1, 2, 3, 4, 5))


def test_head_without_shared_point_is_no_point():
    source = BASE_POSE.copy()
    source[[0, 14, 15, 16, 17]] = -1
    masks, affines = _compute(source, BASE_POSE)
    assert _is_no_point(affines[1]) and masks[1].sum() > 0  # the mask is drawn in the target


def test_no_head_in_target_gives_empty_head_mask():
    target = BASE_POSE.copy()
    target[[0, 14, 15, 16, 17]] = -1
    masks, affines = _compute(BASE_POSE, target)
    assert masks[1].sum() == 0 and _is_no_point(affines[1])


def test_head_uses_only_shared_points():
    source = BASE_POSE + np.array([1.0, 2.0], dtype=np.float32)
    source[[14, 16]] = -1
    _, affines = _compute(source, BASE_POSE)
    np.testing.assert_allclose(affines[1], reference.part_affines(source, BASE_POSE)[1], atol=1e-4)


@pytest.mark.parametrize("where", ["target", "source"])
def test_coincident_limb_joints_are_no_point(where):
    moved = BASE_POSE.copy()
    moved[R_KNEE] = moved[R_HIP]  # zero-length right upper leg
    source, target = (BASE_POSE, moved) if where == "target" else (moved, BASE_POSE)
    masks, affines = _compute(source, target)
    assert _is_no_point(affines[2])
    if where == "target":
        assert masks[2].sum() == 0  # the degenerate "square" has no area under the crossing rule


def test_collinear_torso_is_no_point_or_finite():
    target = BASE_POSE.copy()
    target[[R_SHOULDER, L_SHOULDER, R_HIP, L_HIP]] = [[30, 20], [40, 30], [50, 40], [60, 50]]
    masks, affines = _compute(BASE_POSE, target)
    assert _is_no_point(affines[0])
    assert np.all(masks[0] == 1)


def test_keypoints_on_the_border_match_reference():
    height, width = MARKET_SIZE
    target = BASE_POSE.copy()
    target[R_WRIST] = [height - 1, 0]
    target[L_WRIST] = [height - 1, width - 1]
    target[R_ANKLE] = [0, 0]
    target[L_ANKLE] = [height - 1, width - 1]
    masks, affines = _compute(BASE_POSE, target)
    np.testing.assert_array_equal(masks[:2], reference.part_masks(target, MARKET_SIZE)[:2])
    np.testing.assert_allclose(affines, reference.part_affines(BASE_POSE, target), atol=1e-3)


def test_all_missing_gives_torso_only_and_no_points():
    empty = np.full((18, 2), -1, dtype=np.float32)
    for source, target in ((empty, empty), (BASE_POSE, empty), (empty, BASE_POSE)):
        masks, affines = _compute(source, target)
        assert np.all(affines == NO_POINT)
        assert np.all(masks[0] == 1)
        if target is empty:
            assert masks[1:].sum() == 0


def test_values_and_gradients_stay_finite_on_degenerate_batches():
    empty = np.full((18, 2), -1, dtype=np.float32)
    collapsed = np.tile(BASE_POSE[:1], (18, 1))  # every joint at the same pixel
    source = tf.constant(np.stack([empty, collapsed, BASE_POSE, collapsed]))
    target = tf.constant(np.stack([empty, collapsed, collapsed, BASE_POSE]))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([source, target])
        affines = part_affines(source, target)
        masks = part_masks(target, MARKET_SIZE)
        total = tf.reduce_sum(affines) + tf.reduce_sum(masks)
    assert np.all(np.isfinite(affines.numpy())) and np.all(np.isfinite(masks.numpy()))
    for gradient in tape.gradient(total, [source, target]):
        assert gradient is None or np.all(np.isfinite(gradient.numpy()))
    assert np.all(affines.numpy()[0] == NO_POINT)
    # Collapsed torso and head points cannot be normalised: no_point. (The collapsed limbs' corner
    # "squares" give an underdetermined but finite fit, as scikit-image does.)
    assert np.all(affines.numpy()[1, :2] == NO_POINT)


def test_xla_and_tf_data_give_the_same_result():
    rng = np.random.default_rng(7)
    source = np.stack([BASE_POSE + rng.normal(0, 2, BASE_POSE.shape) for _ in range(4)]).astype(np.float32)
    target = np.stack([BASE_POSE + rng.normal(0, 2, BASE_POSE.shape) for _ in range(4)]).astype(np.float32)
    source[1, R_ELBOW] = -1
    target[2, 0] = -1

    def geometry(s, t):
        return part_masks(t, MARKET_SIZE), part_affines(s, t)

    eager_masks, eager_affines = geometry(source, target)
    xla_masks, xla_affines = tf.function(geometry, jit_compile=True)(tf.constant(source), tf.constant(target))
    np.testing.assert_array_equal(xla_masks.numpy(), np.asarray(eager_masks))
    np.testing.assert_allclose(xla_affines.numpy(), np.asarray(eager_affines), atol=1e-4)
    dataset = tf.data.Dataset.from_tensor_slices((source, target)).batch(2).map(geometry)
    data_masks, data_affines = zip(*[(m.numpy(), a.numpy()) for m, a in dataset])
    np.testing.assert_array_equal(np.concatenate(data_masks), np.asarray(eager_masks))
    np.testing.assert_allclose(np.concatenate(data_affines), np.asarray(eager_affines), atol=1e-5)


@pytest.mark.parametrize("bad", [np.zeros((18, 2)), np.zeros((2, 17, 2)), np.zeros((2, 18, 3))])
def test_bad_shapes_raise_clear_errors(bad):
    with pytest.raises(ValueError, match="Received"):
        part_affines(bad, bad)
    with pytest.raises(ValueError, match="Received"):
        part_masks(bad, MARKET_SIZE)


def test_bad_image_size_raises():
    with pytest.raises(ValueError, match="image_size"):
        part_masks(BASE_POSE[None], (128,))
    with pytest.raises(ValueError, match="image_size"):
        part_masks(BASE_POSE[None], (0, 64))
