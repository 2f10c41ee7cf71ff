"""Evaluation metrics of the original test.py (pose-gan test.py:26-57 at 8693ec4): SSIM, mask-SSIM, Inception Score
and FID.

Numpy in, float out. Images are uint8 (H, W, 3), as the original scored them after 255 (x + 1) / 2.
The Inception network itself lives in `dgan_tf.evaluation.inception`; this module holds the arithmetic.
"""

import numpy as np
from scipy import linalg, ndimage, special
from skimage import draw, morphology
from skimage.metrics import structural_similarity

from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS
from dgan_tf.geometry.polygons import crossing_ranges
from dgan_tf.images import ImageSize
from dgan_tf.options import SSIM_VARIANTS

# The original's SSIM is scikit-image 0.13.1's compare_ssim (pose-gan test.py:29-31 and requirements.txt:8 at
# 8693ec4) with gaussian_weights=True: scipy's gaussian_filter(sigma=1.5) at its default truncation, 4 sigma (13
# taps; scikit-image 0.26 truncates at 3.5 sigma, 11 taps), then the mean over the image cropped by 5 pixels, half
# its fixed win_size of 11. Up to 0.0004 apart from scikit-image 0.26 on real pairs.
SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 4.0
SSIM_CROP = 5
SSIM_K1, SSIM_K2 = 0.01, 0.03
# Smallest image side each variant's window fits in (the original's win_size 11; GFLA win_size 51).
_MIN_SIDE = {"original": 11, "gfla": 51}

# Ma et al. (PG2) mask limbs, 1-based joint pairs as listed in the original's produce_ma_mask.
MA_MASK_LIMBS_1BASED = (
    (2, 3), (2, 6), (3, 4), (4, 5), (6, 7), (7, 8), (2, 9), (9, 10),
    (10, 11), (2, 12), (12, 13), (13, 14), (2, 1), (1, 15), (15, 17),
    (1, 16), (16, 18), (2, 17), (2, 18), (9, 12), (12, 6), (9, 3), (17, 18),
)
MA_MASK_LIMBS = tuple((a - 1, b - 1) for a, b in MA_MASK_LIMBS_1BASED)
MA_MASK_RADIUS = 4
MA_MASK_CLOSING_SIZE = 5


# ----------------------------------------------------------------------------------------------
# SSIM


def _check_image(image, name):
    if not isinstance(image, np.ndarray):
        raise TypeError(f"`{name}` must be a numpy array. Received: {name} of type {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(
            f"`{name}` must be uint8 (convert a [-1, 1] output with 255 * (x + 1) / 2 as the original did). "
            f"Received: {name}.dtype={image.dtype}"
        )
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"`{name}` must have shape (H, W, 3). Received: {name}.shape={image.shape}")


def _check_pair(target, generated, variant):
    if variant not in SSIM_VARIANTS:
        raise ValueError(f"`variant` must be one of {SSIM_VARIANTS}. Received: variant={variant!r}")
    _check_image(target, "target")
    _check_image(generated, "generated")
    if target.shape != generated.shape:
        raise ValueError(
            f"`target` and `generated` must have the same shape. "
            f"Received: target.shape={target.shape}, generated.shape={generated.shape}"
        )
    min_side = _MIN_SIDE[variant]
    if min(target.shape[:2]) < min_side:
        raise ValueError(
            f"SSIM variant {variant!r} needs images of at least {min_side}x{min_side} pixels. "
            f"Received: shape={target.shape}"
        )


def _ssim_original(target, generated, data_range):
    """scikit-image 0.13.1's compare_ssim(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    multichannel=True): the mean over channels of each channel's SSIM map cropped by SSIM_CROP pixels."""
    x = target.astype(np.float64)  # (H, W, 3)
    y = generated.astype(np.float64)

    def weighted_mean(image):  # each channel on its own: no smoothing across the channel axis
        return ndimage.gaussian_filter(image, sigma=(SSIM_SIGMA, SSIM_SIGMA, 0.0), truncate=SSIM_TRUNCATE)

    ux, uy = weighted_mean(x), weighted_mean(y)
    vx = weighted_mean(x * x) - ux * ux  # population (co)variances
    vy = weighted_mean(y * y) - uy * uy
    vxy = weighted_mean(x * y) - ux * uy
    c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
    ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))  # (H, W, 3)
    cropped = ssim_map[SSIM_CROP:-SSIM_CROP, SSIM_CROP:-SSIM_CROP]
    return float(np.mean([cropped[..., channel].mean() for channel in range(cropped.shape[-1])]))


def ssim(target, generated, variant="original"):
    """SSIM of two uint8 (H, W, 3) images, averaged over pixels and channels.

    "original": the Deformable GANs / PG2 call as scikit-image 0.13.1 computed it (Gaussian weights sigma 1.5
    truncated at 4 sigma, population covariance, 5-pixel border left out, data range = generated.max() -
    generated.min(); when that is 0, a constant generated image, the uint8 range 255 is used instead, because the
    original's C1 = C2 = 0 gives 0/0 = NaN there).
    "gfla": GFLA's script/metrics.py call (images as float32 / 255, data_range=1, win_size=51 uniform
    window, sample covariance), the SSIM most papers from 2020 on report.
    """
    _check_pair(target, generated, variant)
    if variant == "original":
        data_range = int(generated.max()) - int(generated.min())
        return _ssim_original(target, generated, data_range if data_range else 255)
    target_unit = target.astype(np.float32) / 255.0  # (H, W, 3) in [0, 1]
    generated_unit = generated.astype(np.float32) / 255.0
    return float(structural_similarity(
        target_unit, generated_unit, data_range=1, win_size=51, channel_axis=-1,
    ))


# ----------------------------------------------------------------------------------------------
# mask-SSIM (Ma et al.)


def _check_keypoints(keypoints_yx, image_size):
    keypoints_yx = np.asarray(keypoints_yx)
    if keypoints_yx.shape != (NUM_JOINTS, 2):
        raise ValueError(
            f"`keypoints_yx` must have shape ({NUM_JOINTS}, 2) in (y, x). Received: shape={keypoints_yx.shape}"
        )
    if not np.issubdtype(keypoints_yx.dtype, np.number) or not np.all(np.isfinite(keypoints_yx)):
        raise ValueError(f"`keypoints_yx` must be finite numbers, -1 for missing. Received: {keypoints_yx.tolist()}")
    return keypoints_yx.astype(np.float64), ImageSize.of(image_size)


def ma_mask(keypoints_yx, image_size):
    """Binary (H, W) body mask of Ma et al. (PG2) from the TARGET keypoints (18, 2) in (y, x), -1 missing.

    Filled quadrilaterals of half width 4 px along 23 limbs (skipped when a joint is missing), disks of
    radius 4 px at the visible joints, then dilation and erosion with a 5x5 square, as the original's
    pose_utils.produce_ma_mask (pose-gan pose_utils.py:108-143 at 8693ec4). The quadrilaterals are filled by
    scikit-image 0.13's crossing rule (dgan_tf.geometry.polygons), which leaves out the pixels on their right and
    lower edges; scikit-image 0.26 would draw them. Joints outside the image are clipped to it by the drawing.
    """
    keypoints_yx, shape = _check_keypoints(keypoints_yx, image_size)
    visible = np.all(keypoints_yx != MISSING, axis=1)  # (18,)
    mask = np.zeros(shape, dtype=bool)  # (H, W)
    rows, cols = np.arange(shape[0], dtype=np.float64), np.arange(shape[1])
    for a, b in MA_MASK_LIMBS:
        if not (visible[a] and visible[b]):
            continue
        along = keypoints_yx[a] - keypoints_yx[b]  # (2,) in (y, x)
        length = np.linalg.norm(along)
        if length == 0:
            # The original divides by 0 here; NaN vertices make skimage draw nothing, so skip.
            continue
        normal = MA_MASK_RADIUS * np.array([-along[1], along[0]]) / length  # (2,) perpendicular
        corners = np.stack([
            keypoints_yx[a] + normal, keypoints_yx[a] - normal,
            keypoints_yx[b] - normal, keypoints_yx[b] + normal,
        ])  # (4, 2)
        # scikit-image 0.13's draw.polygon scans rows: columns low <= c < high of each row are inside.
        low, high = crossing_ranges(corners[:, 0], corners[:, 1], rows, np)  # (H,) each
        mask |= (cols >= low[:, None]) & (cols < high[:, None])
    for joint in np.flatnonzero(visible):
        rows, cols = draw.disk(tuple(keypoints_yx[joint]), MA_MASK_RADIUS, shape=shape)
        mask[rows, cols] = True
    footprint = morphology.footprint_rectangle((MA_MASK_CLOSING_SIZE, MA_MASK_CLOSING_SIZE))
    mask = morphology.dilation(mask, footprint)
    return morphology.erosion(mask, footprint)


def apply_mask(image, mask):
    """uint8 (H, W, 3) image with the pixels outside a bool (H, W) mask set to 0, as the original did."""
    _check_image(image, "image")
    mask = np.asarray(mask)
    if mask.shape != image.shape[:2]:
        raise ValueError(f"`mask` must have shape {image.shape[:2]}. Received: mask.shape={mask.shape}")
    return image * mask.astype(np.uint8)[..., None]  # (H, W, 3) uint8


def mask_ssim(target, generated, keypoints_yx, variant="original"):
    """SSIM of both images multiplied by the Ma et al. mask of the target keypoints (18, 2) in (y, x).

    The "original" variant's data range then comes from the masked generated image, as in the original.
    """
    _check_pair(target, generated, variant)
    mask = ma_mask(keypoints_yx, target.shape[:2])  # (H, W)
    return ssim(apply_mask(target, mask), apply_mask(generated, mask), variant=variant)


# ----------------------------------------------------------------------------------------------
# Inception Score and FID arithmetic


def inception_score_from_predictions(probs, splits=10):
    """Inception Score (Salimans et al. 2016) of softmax predictions (N, C): (mean, std) over splits.

    Per split exp(mean_x KL(p(y|x) || p(y))), with p(y) the split's mean prediction; the splits are the
    contiguous slices [i N // splits, (i + 1) N // splits) of the OpenAI code. 0 log 0 counts as 0.
    """
    probs = np.asarray(probs, dtype=np.float64)  # (N, C)
    if probs.ndim != 2:
        raise ValueError(f"`probs` must have shape (N, C). Received: probs.shape={probs.shape}")
    if not isinstance(splits, (int, np.integer)) or splits < 1:
        raise ValueError(f"`splits` must be a positive integer. Received: splits={splits!r}")
    count = probs.shape[0]
    if count < splits:
        raise ValueError(f"Need at least one image per split. Received: {count} predictions, splits={splits}")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("`probs` must be finite and non-negative (softmax outputs).")
    row_sums = probs.sum(axis=1)
    if not np.allclose(row_sums, 1.0, atol=1e-3):
        worst = int(np.argmax(np.abs(row_sums - 1.0)))
        raise ValueError(f"Each row of `probs` must sum to 1. Received: row {worst} sums to {row_sums[worst]}")
    scores = []
    for i in range(splits):
        part = probs[i * count // splits:(i + 1) * count // splits]  # (n, C)
        marginal = part.mean(axis=0, keepdims=True)  # (1, C)
        kl = special.xlogy(part, part) - special.xlogy(part, np.broadcast_to(marginal, part.shape))  # (n, C)
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def feature_statistics(features):
    """Mean (D,) and covariance (D, D) of features (N, D), N >= 2, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"`features` must have shape (N, D) with N >= 2. Received: shape={features.shape}")
    if not np.all(np.isfinite(features)):
        raise ValueError("`features` contains NaN or infinite values.")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu_a, cov_a, mu_b, cov_b, eps=1e-6):
    """Fréchet distance |mu_a - mu_b|^2 + Tr(cov_a + cov_b - 2 sqrt(cov_a cov_b)) of two Gaussians.

    As the TTUR / pytorch-fid reference: when sqrtm of the product is not finite (singular product),
    eps is added to both diagonals and it is retried; a small imaginary part from rounding is dropped.
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, np.float64)), np.atleast_1d(np.asarray(mu_b, np.float64))
    cov_a, cov_b = np.atleast_2d(np.asarray(cov_a, np.float64)), np.atleast_2d(np.asarray(cov_b, np.float64))
    if mu_a.shape != mu_b.shape or cov_a.shape != cov_b.shape or cov_a.shape != mu_a.shape * 2:
        raise ValueError(
            f"Mismatched statistics. Received: mu_a {mu_a.shape}, cov_a {cov_a.shape}, "
            f"mu_b {mu_b.shape}, cov_b {cov_b.shape}"
        )
    diff = mu_a - mu_b
    covmean = linalg.sqrtm(cov_a @ cov_b)
    if not np.all(np.isfinite(covmean)):
        offset = np.eye(cov_a.shape[0]) * eps
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def fid_from_features(features_a, features_b):
    """Fréchet Inception Distance between two feature sets (N_a, D) and (N_b, D)."""
    mu_a, cov_a = feature_statistics(features_a)
    mu_b, cov_b = feature_statistics(features_b)
    return frechet_distance(mu_a, cov_a, mu_b, cov_b)


def inception_score(images, scorer=None, splits=10):
    """(mean, std) Inception Score of uint8 images (N, H, W, 3) or a list of (H, W, 3).

    scorer: from `dgan_tf.evaluation.inception.make_inception_scorer`; by default the 2015 graph (comparable
    with published values), from the Keras folder or downloaded with its check unless offline.
    """
    if scorer is None:
        from dgan_tf.evaluation.inception import make_inception_scorer  # lazy: SSIM users need no Keras import
        scorer = make_inception_scorer()
    return inception_score_from_predictions(scorer.predictions(images), splits=splits)
