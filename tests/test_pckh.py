"""PCKh as PATN computes it: head box from the target's head points, per-axis strict test, pooled over joints."""

import numpy as np
import pytest

from dgan_tf.evaluation.pckh import PCKH_HEAD_JOINTS, head_size, pckh, pckh_counts

M = -1


def target_pose():
    """(18, 2) yx: head box y 8..20 (height 12), x 26..36 (width 10), so alpha = 0.5 allows dy < 6, dx < 5."""
    kp = np.array([[30 + 5 * j, 20 + j] for j in range(18)])
    kp[[0, 1, 14, 15, 16, 17]] = [[10, 30], [20, 30], [8, 28], [8, 33], [9, 26], [9, 36]]
    return kp


def reference_counts(predicted, target, alpha=0.5):
    """A plain loop over images and joints following tool/calPCKH_market.py of tengteng95/Pose-Transfer."""
    n_correct = n_all = 0
    for p, t in zip(predicted, target):
        head = [(t[j, 1], t[j, 0]) for j in PCKH_HEAD_JOINTS if t[j, 0] != M and t[j, 1] != M]
        if len(head) < 2:
            continue
        w = max(x for x, _ in head) - min(x for x, _ in head)
        h = max(y for _, y in head) - min(y for _, y in head)
        n_all += sum(1 for j in range(18) if t[j, 0] != M)
        for j in range(18):
            if M in (p[j, 0], p[j, 1], t[j, 0], t[j, 1]):
                continue
            n_correct += abs(p[j, 1] - t[j, 1]) < w * alpha and abs(p[j, 0] - t[j, 0]) < h * alpha
    return n_correct, n_all


def test_perfect_prediction_scores_one_and_head_size_is_height_width():
    t = target_pose()
    assert pckh(t, t) == 1.0
    np.testing.assert_array_equal(head_size(t), [[12, 10]])


def test_per_axis_strict_box_threshold():
    t = target_pose()
    p = t.copy()
    p[2] += [5, 4]  # dy 5 < 6, dx 4 < 5: correct
    p[3] += [-5, -4]  # correct
    p[4] += [6, 0]  # dy 6 is not < 6: wrong
    p[5] += [0, 5]  # dx 5 is not < 5: wrong
    p[6] += [4, 4]  # inside the box though 5.7 px away: the test is per axis, not a radius
    assert pckh_counts(p, t) == (16, 18, 1)
    assert pckh(p, t, threshold=1.0) == 1.0  # dy < 12, dx < 10 for all
    assert pckh_counts(p, t, threshold=0.0) == (0, 18, 1)


def test_missing_joints():
    t = target_pose()
    p = t.copy()
    p[7] = M  # present in the target, missing in the prediction: a miss
    t_missing = t.copy()
    t_missing[8] = M  # missing in the target: not counted, whatever is predicted
    p[8] = t[8]
    assert pckh_counts(p, t_missing) == (16, 17, 1)


def test_pooled_over_all_joints_not_a_mean_of_images():
    a = target_pose()
    b = np.full((18, 2), M)
    b[[0, 1, 2, 5]] = [[10, 30], [20, 30], [22, 20], [22, 40]]  # 4 present target joints, head = nose + neck
    predicted = np.stack([a, np.full((18, 2), M)])  # image a all right, image b all missed
    assert pckh(predicted, np.stack([a, b])) == pytest.approx(18 / 22)  # the mean of images would be 0.5


def test_targets_with_fewer_than_two_head_points_are_skipped():
    a = target_pose()
    lone = target_pose()
    lone[[1, 14, 15, 16, 17]] = M  # only the nose left of the head
    predicted = np.stack([a, np.full((18, 2), M)])
    assert pckh_counts(predicted, np.stack([a, lone])) == (18, 18, 1)
    assert np.isnan(head_size(lone)).all()
    with pytest.raises(ValueError, match="undefined"):
        pckh(np.full((18, 2), M), lone)


def test_zero_width_head_box_counts_joints_but_none_is_correct():
    t = np.full((18, 2), M)
    t[[0, 1, 2]] = [[10, 30], [20, 30], [22, 20]]  # nose straight above the neck: width 0
    assert pckh_counts(t, t) == (0, 3, 1)


def test_matches_the_reference_loop_on_random_keypoints():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 128, size=(200, 18, 2))
    target[rng.random((200, 18)) < 0.25] = M
    predicted = target + rng.integers(-8, 9, size=target.shape)
    predicted[rng.random((200, 18)) < 0.1] = M
    predicted[(target == M).all(-1) & (rng.random((200, 18)) < 0.5)] = 50  # predictions where the target has none
    for alpha in (0.5, 0.25, 1.0):
        correct, counted, _ = pckh_counts(predicted, target, alpha)
        assert (correct, counted) == reference_counts(predicted, target, alpha)
        assert 0 < correct < counted


def test_bad_arguments():
    t = target_pose()
    with pytest.raises(ValueError, match="same shape"):
        pckh(t[None], np.stack([t, t]))
    with pytest.raises(ValueError, match=r"\(18, 2\)"):
        pckh(t[:17], t[:17])
    with pytest.raises(ValueError, match="threshold"):
        pckh(t, t, threshold=-0.1)
