"""Tests of dgan_tf.evaluation.metrics and dgan_tf.evaluation.inception: SSIM, Ma et al. mask, IS and FID arithmetic, weights."""

import json

import numpy as np
import pandas as pd
import pytest
from skimage import draw
from skimage.io import imread
from skimage.metrics import structural_similarity

import skimage_0_13
from dgan_tf.evaluation import metrics
from dgan_tf.evaluation.inception import (
    WEIGHTS_FILE,
    InceptionScorer,
    WeightsNotFoundError,
    default_weights_path,
    resolve_weights_path,
)


@pytest.fixture(scope="module")
def walk_pair(real_images):
    """Two real 128x64 frames of the walk sequence (target, generated stand-in)."""
    return imread(real_images / "denis_walk000010.jpg"), imread(real_images / "denis_walk000020.jpg")


@pytest.fixture(scope="module")
def market_keypoints(annotations_real):
    """The first 20 rows of the real Market test annotations as {name: (18, 2) int array in (y, x)}."""
    frame = pd.read_csv(annotations_real / "market-annotation-test.csv", sep=":", nrows=20)
    return {
        row["name"]: np.stack([json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])], axis=1)
        for _, row in frame.iterrows()
    }


def _full_keypoints(keypoints):
    return next(kp for kp in keypoints.values() if np.all(kp != -1))


# ----------------------------------------------------------------------------------------------
# SSIM


def _walk_pairs(real_images, count=8):
    """`count` (target, generated stand-in) pairs of real 128x64 walk frames, 7 frames apart."""
    frames = [imread(real_images / f"denis_walk{k:06d}.jpg") for k in range(0, 7 * count + 7, 7)]
    return list(zip(frames[:-1], frames[1:]))[:count]


def _ssim_0_13(target, generated):
    """The original's call (pose-gan test.py:29-31 at 8693ec4) on scikit-image 0.13.1's compare_ssim."""
    return skimage_0_13.compare_ssim(target, generated, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                     multichannel=True, data_range=generated.max() - generated.min())


def test_ssim_original_matches_skimage_0_13_on_real_frames(real_images, market_keypoints):
    """SSIM and mask-SSIM as scikit-image 0.13.1 computed them (13-tap Gaussian, 5-pixel crop), not as 0.26 does."""
    keypoints = [kp for kp in market_keypoints.values() if np.all(kp[[2, 5, 8, 11]] != -1)]
    apart = []
    for k, (target, generated) in enumerate(_walk_pairs(real_images)):
        assert target.shape == (128, 64, 3) and target.dtype == np.uint8
        mask = metrics.ma_mask(keypoints[k % len(keypoints)], (128, 64))
        for tgt, gen in ((target, generated), (metrics.apply_mask(target, mask), metrics.apply_mask(generated, mask))):
            value = metrics.ssim(tgt, gen)
            assert value == pytest.approx(_ssim_0_13(tgt, gen), abs=1e-12)
            assert 0.0 < value < 0.99
            today = structural_similarity(tgt, gen, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                          channel_axis=-1, data_range=int(gen.max()) - int(gen.min()))
            apart.append(abs(value - today))
    # scikit-image 0.26 (11 taps) is another number: what the metric computed before it followed 0.13.1.
    assert max(apart) > 5e-5 and min(apart) > 1e-7, apart


def test_ssim_gfla_matches_skimage_on_real_frames(walk_pair):
    target, generated = walk_pair
    expected = structural_similarity(
        target.astype(np.float32) / 255.0, generated.astype(np.float32) / 255.0,
        data_range=1, win_size=51, channel_axis=-1,
    )
    value = metrics.ssim(target, generated, variant="gfla")
    assert value == pytest.approx(expected, abs=1e-12)
    assert value != pytest.approx(metrics.ssim(target, generated), abs=1e-3)


@pytest.mark.parametrize("variant", metrics.SSIM_VARIANTS)
def test_ssim_of_image_with_itself_is_one(walk_pair, variant):
    assert metrics.ssim(walk_pair[0], walk_pair[0], variant=variant) == pytest.approx(1.0, abs=1e-6)


def test_ssim_constant_generated_image_is_finite(walk_pair):
    target = walk_pair[0]
    constant = np.full_like(target, 128)
    value = metrics.ssim(target, constant)
    assert np.isfinite(value)
    assert metrics.ssim(constant, constant) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "target, generated, variant, message",
    [
        (np.zeros((64, 64, 3), np.float32), np.zeros((64, 64, 3), np.uint8), "original", "uint8"),
        (np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.uint8), "original", r"\(H, W, 3\)"),
        (np.zeros((64, 64, 3), np.uint8), np.zeros((64, 32, 3), np.uint8), "original", "same shape"),
        (np.zeros((64, 40, 3), np.uint8), np.zeros((64, 40, 3), np.uint8), "gfla", "at least 51x51"),
        (np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8), "psnr", "variant"),
    ],
)
def test_ssim_rejects_bad_input_clearly(target, generated, variant, message):
    with pytest.raises((TypeError, ValueError), match=message):
        metrics.ssim(target, generated, variant=variant)


# ----------------------------------------------------------------------------------------------
# Ma et al. mask


def test_ma_mask_covers_every_visible_joint_and_stays_in_image(market_keypoints):
    assert len(market_keypoints) == 20
    checked = 0
    for name, keypoints in market_keypoints.items():
        mask = metrics.ma_mask(keypoints, (128, 64))
        assert mask.shape == (128, 64) and mask.dtype == bool
        for y, x in keypoints:
            if y != -1 and x != -1 and 0 <= y < 128 and 0 <= x < 64:
                assert mask[y, x], f"{name}: joint ({y}, {x}) outside the mask"
                checked += 1
        if np.any(keypoints != -1):
            assert 0 < mask.mean() < 0.9, name
    assert checked > 100


def test_ma_mask_is_empty_without_keypoints(market_keypoints):
    all_missing = [kp for kp in market_keypoints.values() if np.all(kp == -1)]
    assert all_missing, "the first rows of the real file include an all -1 row"
    assert not metrics.ma_mask(all_missing[0], (128, 64)).any()


def _spread_rows(path, count):
    """`count` rows spread evenly over a real annotation file, as (18, 2) int arrays in (y, x)."""
    frame = pd.read_csv(path, sep=":")
    rows = frame.iloc[np.linspace(0, len(frame) - 1, count).astype(int)]
    return [np.stack([json.loads(r["keypoints_y"]), json.loads(r["keypoints_x"])], axis=1) for _, r in rows.iterrows()]


@pytest.mark.parametrize("annotations, size, count", [("market-annotation-test.csv", (128, 64), 200),
                                                      ("fasion-annotation-test.csv", (256, 256), 60)])
def test_ma_mask_is_the_original_drawn_by_skimage_0_13(annotations_real, annotations, size, count):
    """Mask for mask the original's produce_ma_mask on scikit-image 0.13.1's draw.polygon and circle; 0.26's
    draw.polygon, which counts the pixels on the edges in, gives other masks for many poses."""
    other = 0
    for keypoints in _spread_rows(annotations_real / annotations, count):
        mask = metrics.ma_mask(keypoints, size)
        expected = skimage_0_13.produce_ma_mask(keypoints, size)
        assert np.array_equal(mask, expected), f"{keypoints.tolist()}: {np.sum(mask != expected)} pixels differ"
        other += not np.array_equal(mask, skimage_0_13.produce_ma_mask(keypoints, size, polygon=draw.polygon))
    assert other > count // 4, f"only {other} of {count} masks differ under scikit-image 0.26's rule"


def test_ma_mask_single_limb_width(market_keypoints):
    keypoints = -np.ones((18, 2), int)
    keypoints[1] = (20, 30)  # neck
    keypoints[2] = (80, 30)  # right shoulder, straight below: a vertical limb 2-3
    mask = metrics.ma_mask(keypoints, (128, 64))
    # Corners at columns 26 and 34: scikit-image 0.13's rule fills the left edge, not the right one.
    assert np.flatnonzero(mask[50]).tolist() == list(range(26, 34))
    assert not mask[:14].any() and not mask[87:].any()


def test_ma_mask_rejects_bad_keypoints():
    with pytest.raises(ValueError, match=r"\(18, 2\)"):
        metrics.ma_mask(np.zeros((17, 2)), (128, 64))
    with pytest.raises(ValueError, match="finite"):
        metrics.ma_mask(np.full((18, 2), np.nan), (128, 64))


def test_mask_ssim_identical_is_one_and_ignores_outside(walk_pair, market_keypoints, rng):
    target, generated = walk_pair
    keypoints = _full_keypoints(market_keypoints)
    mask = metrics.ma_mask(keypoints, (128, 64))
    assert metrics.mask_ssim(target, target, keypoints) == pytest.approx(1.0, abs=1e-6)
    reference = metrics.mask_ssim(target, generated, keypoints)
    noise = rng.integers(0, 256, size=generated.shape, dtype=np.uint8)
    changed = np.where(mask[..., None], generated, noise)
    assert not np.array_equal(changed, generated)
    for variant in metrics.SSIM_VARIANTS:
        assert metrics.mask_ssim(target, changed, keypoints, variant=variant) == pytest.approx(
            metrics.mask_ssim(target, generated, keypoints, variant=variant), abs=1e-12
        )
    # and it does see changes inside the mask
    inside = np.where(mask[..., None], noise, generated)
    assert metrics.mask_ssim(target, inside, keypoints) < reference - 0.05


# ----------------------------------------------------------------------------------------------
# Inception Score arithmetic


def test_inception_score_uniform_predictions_is_one():
    probs = np.full((40, 1000), 1.0 / 1000)
    mean, std = metrics.inception_score_from_predictions(probs, splits=10)
    assert mean == pytest.approx(1.0, abs=1e-9) and std == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_inception_score_confident_over_k_classes_is_k(k):
    splits = 5
    labels = np.arange(splits * k * 2) % k  # every split holds each of the k classes twice
    probs = np.eye(20)[labels]
    mean, std = metrics.inception_score_from_predictions(probs, splits=splits)
    assert mean == pytest.approx(k, abs=1e-4) and std == pytest.approx(0.0, abs=1e-6)


def test_inception_score_std_over_splits():
    first = np.eye(10)[np.arange(8) % 2]  # split 1: IS 2
    second = np.eye(10)[np.arange(8) % 4]  # split 2: IS 4
    mean, std = metrics.inception_score_from_predictions(np.concatenate([first, second]), splits=2)
    assert mean == pytest.approx(3.0, abs=1e-9) and std == pytest.approx(1.0, abs=1e-9)


def test_inception_score_rejects_bad_predictions():
    with pytest.raises(ValueError, match="split"):
        metrics.inception_score_from_predictions(np.full((5, 10), 0.1), splits=10)
    with pytest.raises(ValueError, match="sum to 1"):
        metrics.inception_score_from_predictions(np.full((20, 10), 0.5), splits=2)


# ----------------------------------------------------------------------------------------------
# FID arithmetic


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_mean_shift(rng):
    features = rng.normal(size=(200, 16))
    assert abs(metrics.fid_from_features(features, features)) < 1e-6
    distances = []
    for size in (0.5, 1.0, 2.0):
        shift = np.full(16, size)
        distance = metrics.fid_from_features(features, features + shift)
        assert distance == pytest.approx(shift @ shift, rel=1e-6)  # same covariance: only the mean term
        distances.append(distance)
    assert distances == sorted(distances)


def test_frechet_distance_matches_closed_form_for_diagonal_gaussians(rng):
    mu_a, mu_b = rng.normal(size=8), rng.normal(size=8)
    var_a, var_b = rng.uniform(0.5, 2.0, size=8), rng.uniform(0.5, 2.0, size=8)
    expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
    value = metrics.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
    assert value == pytest.approx(expected, rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions_is_finite(rng):
    value = metrics.fid_from_features(rng.normal(size=(5, 32)), rng.normal(size=(6, 32)) + 1.0)
    assert np.isfinite(value) and value > 0


def test_fid_rejects_bad_features(rng):
    with pytest.raises(ValueError, match="N >= 2"):
        metrics.fid_from_features(rng.normal(size=(1, 4)), rng.normal(size=(3, 4)))
    with pytest.raises(ValueError, match="Mismatched"):
        metrics.fid_from_features(rng.normal(size=(4, 4)), rng.normal(size=(4, 5)))


# ----------------------------------------------------------------------------------------------
# InceptionV3


def test_missing_weights_error_names_file_folder_and_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert default_weights_path() == str(tmp_path / "models" / WEIGHTS_FILE)
    with pytest.raises(WeightsNotFoundError) as caught:
        InceptionScorer()
    message = str(caught.value)
    assert WEIGHTS_FILE in message
    assert str(tmp_path / "models") in message
    assert "--inception-weights" in message and "https://" in message
    assert not (tmp_path / "models").exists(), "nothing may be downloaded or created"
    with pytest.raises(WeightsNotFoundError, match="nowhere.h5"):
        resolve_weights_path(tmp_path / "nowhere.h5")


def test_random_weights_need_the_explicit_argument(tmp_path):
    with pytest.raises(ValueError, match="weights"):
        InceptionScorer(weights="none")
    with pytest.raises(ValueError, match="weights_path"):
        InceptionScorer(weights="random", weights_path=tmp_path / "x.h5")


def test_inception_random_weights_shapes_on_tiny_images(rng):
    scorer = InceptionScorer(weights="random", batch_size=2)
    images = [rng.integers(0, 256, size=(32, 16, 3), dtype=np.uint8) for _ in range(2)]
    images.append(rng.integers(0, 256, size=(40, 24, 3), dtype=np.uint8))  # another size
    probs, features = scorer.predictions_and_features(images)
    assert probs.shape == (3, 1000) and features.shape == (3, 2048)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    assert np.all(np.isfinite(features))
    mean, _ = metrics.inception_score(images, scorer=scorer, splits=1)
    assert mean >= 1.0 - 1e-6
    with pytest.raises(ValueError, match=r"images\[1\]"):
        scorer.predictions([images[0], images[0].astype(np.float32)])
