"""scikit-image 0.13.1, the version the original ran (pose-gan requirements.txt:8 at 8693ec4), transcribed to plain
Python and numpy as the reference of the evaluation tests: compare_ssim, draw.polygon, draw.circle, and the
original's produce_ma_mask (pose-gan pose_utils.py:108-143 at 8693ec4) on top of them.

Transcribed from the v0.13.1 tag of scikit-image/scikit-image (commit 03f4997): skimage/measure/
_structural_similarity.py (compare_ssim), skimage/draw/_draw.pyx (_polygon), skimage/_shared/geometry.pyx
(point_in_polygon), skimage/draw/draw.py (ellipse, _ellipse_in_shape, circle), skimage/morphology/grey.py
(dilation and erosion: scipy.ndimage's grey_dilation and grey_erosion with the footprint, default mode). Loops and
names follow the originals, so that each line can be checked against its source; pure Python floats are the C
doubles of the Cython code.
"""

import math

import numpy as np
from scipy.ndimage import gaussian_filter, grey_dilation, grey_erosion

MISSING_VALUE = -1


# ---- skimage/measure/_structural_similarity.py


def compare_ssim(X, Y, win_size=None, data_range=None, multichannel=False, gaussian_weights=False, **kwargs):
    """compare_ssim of 0.13.1 without the gradient and full outputs (the original asked for neither)."""
    if multichannel:
        args = dict(win_size=win_size, data_range=data_range, multichannel=False, gaussian_weights=gaussian_weights)
        args.update(kwargs)
        nch = X.shape[-1]
        mssim = np.empty(nch)
        for ch in range(nch):
            mssim[..., ch] = compare_ssim(X[..., ch], Y[..., ch], **args)
        return mssim.mean()
    K1 = kwargs.pop("K1", 0.01)
    K2 = kwargs.pop("K2", 0.03)
    sigma = kwargs.pop("sigma", 1.5)
    use_sample_covariance = kwargs.pop("use_sample_covariance", True)
    if win_size is None:
        win_size = 11 if gaussian_weights else 7
    if gaussian_weights:
        filter_func = gaussian_filter  # scipy's default truncate=4.0: 13 taps at sigma 1.5
        filter_args = {"sigma": sigma}
    else:
        raise NotImplementedError("the original used gaussian_weights=True")
    X = X.astype(np.float64)
    Y = Y.astype(np.float64)
    NP = win_size ** X.ndim
    cov_norm = NP / (NP - 1) if use_sample_covariance else 1.0
    ux = filter_func(X, **filter_args)
    uy = filter_func(Y, **filter_args)
    uxx = filter_func(X * X, **filter_args)
    uyy = filter_func(Y * Y, **filter_args)
    uxy = filter_func(X * Y, **filter_args)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    R = data_range
    C1 = (K1 * R) ** 2
    C2 = (K2 * R) ** 2
    A1, A2, B1, B2 = (2 * ux * uy + C1, 2 * vxy + C2, ux ** 2 + uy ** 2 + C1, vx + vy + C2)
    D = B1 * B2
    S = (A1 * A2) / D
    pad = (win_size - 1) // 2
    return S[pad:-pad, pad:-pad].mean()  # skimage.util.crop(S, pad) of a 2-D map


# ---- skimage/_shared/geometry.pyx and skimage/draw/_draw.pyx


def point_in_polygon(nr_verts, xp, yp, x, y):
    c = 0
    j = nr_verts - 1
    for i in range(nr_verts):
        if ((((yp[i] <= y) and (y < yp[j])) or ((yp[j] <= y) and (y < yp[i])))
                and (x < (xp[j] - xp[i]) * (y - yp[i]) / (yp[j] - yp[i]) + xp[i])):
            c = not c
        j = i
    return c


def polygon(r, c, shape=None):
    """draw.polygon -> _polygon: every pixel of the bounding box, tested with (x, y) = (column, row)."""
    r = [float(v) for v in r]
    c = [float(v) for v in c]
    nr_verts = len(c)
    minr = int(max(0, min(r)))
    maxr = int(math.ceil(max(r)))
    minc = int(max(0, min(c)))
    maxc = int(math.ceil(max(c)))
    if shape is not None:
        maxr = min(shape[0] - 1, maxr)
        maxc = min(shape[1] - 1, maxc)
    rr, cc = [], []
    for r_i in range(minr, maxr + 1):
        for c_i in range(minc, maxc + 1):
            if point_in_polygon(nr_verts, c, r, c_i, r_i):
                rr.append(r_i)
                cc.append(c_i)
    return np.array(rr, dtype=np.intp), np.array(cc, dtype=np.intp)


# ---- skimage/draw/draw.py


def _ellipse_in_shape(shape, center, radii, rotation=0.0):
    r_lim, c_lim = np.ogrid[0:float(shape[0]), 0:float(shape[1])]
    r_org, c_org = center
    r_rad, c_rad = radii
    rotation %= np.pi
    sin_alpha, cos_alpha = np.sin(rotation), np.cos(rotation)
    r, c = (r_lim - r_org), (c_lim - c_org)
    distances = ((r * cos_alpha + c * sin_alpha) / r_rad) ** 2 + ((r * sin_alpha - c * cos_alpha) / c_rad) ** 2
    return np.nonzero(distances < 1)


def ellipse(r, c, r_radius, c_radius, shape=None, rotation=0.0):
    center = np.array([r, c])
    radii = np.array([r_radius, c_radius])
    rotation %= np.pi
    r_radius_rot = abs(r_radius * np.cos(rotation)) + c_radius * np.sin(rotation)
    c_radius_rot = r_radius * np.sin(rotation) + abs(c_radius * np.cos(rotation))
    radii_rot = np.array([r_radius_rot, c_radius_rot])
    upper_left = np.ceil(center - radii_rot).astype(int)
    lower_right = np.floor(center + radii_rot).astype(int)
    if shape is not None:
        upper_left = np.maximum(upper_left, np.array([0, 0]))
        lower_right = np.minimum(lower_right, np.array(shape[:2]) - 1)
    shifted_center = center - upper_left
    bounding_shape = lower_right - upper_left + 1
    rr, cc = _ellipse_in_shape(bounding_shape, shifted_center, radii, rotation)
    rr.flags.writeable = True
    cc.flags.writeable = True
    rr += upper_left[0]
    cc += upper_left[1]
    return rr, cc


def circle(r, c, radius, shape=None):
    return ellipse(r, c, radius, radius, shape)


# ---- the original's pose_utils.produce_ma_mask on top of them


def produce_ma_mask(kp_array, img_size, point_radius=4, polygon=polygon):
    """pose-gan pose_utils.py:108-143 at 8693ec4, kp_array (18, 2) int in (y, x) as load_pose_cords_from_strings
    returns it. A zero-length limb (two joints on one pixel) divides by 0 there; it draws nothing here.
    `polygon`: scikit-image 0.13.1's (default) or another version's draw.polygon."""
    mask = np.zeros(shape=img_size, dtype=bool)
    limbs = [[2, 3], [2, 6], [3, 4], [4, 5], [6, 7], [7, 8], [2, 9], [9, 10],
             [10, 11], [2, 12], [12, 13], [13, 14], [2, 1], [1, 15], [15, 17],
             [1, 16], [16, 18], [2, 17], [2, 18], [9, 12], [12, 6], [9, 3], [17, 18]]
    limbs = np.array(limbs) - 1
    for f, t in limbs:
        from_missing = kp_array[f][0] == MISSING_VALUE or kp_array[f][1] == MISSING_VALUE
        to_missing = kp_array[t][0] == MISSING_VALUE or kp_array[t][1] == MISSING_VALUE
        if from_missing or to_missing:
            continue
        norm_vec = kp_array[f] - kp_array[t]
        norm_vec = np.array([-norm_vec[1], norm_vec[0]])
        if np.linalg.norm(norm_vec) == 0:
            continue
        norm_vec = point_radius * norm_vec / np.linalg.norm(norm_vec)
        vetexes = np.array([kp_array[f] + norm_vec, kp_array[f] - norm_vec, kp_array[t] - norm_vec,
                            kp_array[t] + norm_vec])
        yy, xx = polygon(vetexes[:, 0], vetexes[:, 1], shape=img_size)
        mask[yy, xx] = True
    for i, joint in enumerate(kp_array):
        if kp_array[i][0] == MISSING_VALUE or kp_array[i][1] == MISSING_VALUE:
            continue
        yy, xx = circle(joint[0], joint[1], radius=point_radius, shape=img_size)
        mask[yy, xx] = True
    square = np.ones((5, 5), dtype=np.uint8)  # skimage.morphology.square(5); symmetric, so its inversion is a no-op
    mask = grey_dilation(mask, footprint=square)
    return grey_erosion(mask, footprint=square)
