"""Independent per-pair numpy/scikit-image reference for part masks and affines.

Follows the original (pose-gan pose_transform.py:101-265 at 8693ec4) literally, one pair at a time, so that the
batched keras.ops implementation in dgan_tf.geometry.parts can be checked against it (tests, benchmark). Like the
original, it assumes the four torso joints are present in both images (it raises KeyError otherwise).
"""

import numpy as np
import skimage.measure
import skimage.transform

LABELS = (
    "nose", "neck", "Rsho", "Relb", "Rwri", "Lsho", "Lelb", "Lwri", "Rhip", "Rkne", "Rank",
    "Lhip", "Lkne", "Lank", "Leye", "Reye", "Lear", "Rear",
)
HEAD_NAMES = ("nose", "Leye", "Reye", "Lear", "Rear")
NO_POINT = np.array([[1.0, 0.0, 1000.0], [0.0, 1.0, 1000.0], [0.0, 0.0, 1.0]])
# (from, to, mask end extension, affine end extension), in part order 2..9.
LIMBS = (
    ("Rhip", "Rkne", 0.1, 0.1),
    ("Lhip", "Lkne", 0.1, 0.1),
    ("Rkne", "Rank", 0.5, 0.3),
    ("Lkne", "Lank", 0.5, 0.3),
    ("Rsho", "Relb", 0.1, 0.1),
    ("Lsho", "Lelb", 0.1, 0.1),
    ("Relb", "Rwri", 0.5, 0.3),
    ("Lelb", "Lwri", 0.5, 0.3),
)


def named_keypoints(keypoints_yx):
    """(18, 2) (y, x) array -> {name: (x, y) float64 array} of the visible joints."""
    result = {}
    for index, name in enumerate(LABELS):
        y, x = keypoints_yx[index]
        if y != -1 and x != -1:
            result[name] = np.array([x, y], dtype=np.float64)
    return result


def torso_scale(kp):
    """sqrt(mean(|Rhip - Rsho|^2, |Lhip - Lsho|^2))."""
    right = np.sum((kp["Rhip"] - kp["Rsho"]) ** 2)
    left = np.sum((kp["Lhip"] - kp["Lsho"]) ** 2)
    return np.sqrt((right + left) / 2.0)


def limb_polygon(start, end, scale, end_extension):
    """The original's estimate_polygon: rectangle (4, 2) in (x, y) around the extended limb."""
    start = start + (start - end) * 0.1
    end = end + (end - start) * end_extension
    normal = start - end
    normal = np.array([-normal[1], normal[0]])
    length = np.linalg.norm(normal)
    if length == 0:
        return np.array([start + 1, start - 1, end - 1, end + 1])
    normal = normal / length
    half = scale * 0.2
    return np.array([start + half * normal, start - half * normal, end - half * normal, end + half * normal])


def part_masks(keypoints_target_yx, image_size, points_in_polygon=skimage.measure.grid_points_in_poly):
    """(18, 2) target keypoints -> (10, H, W) float32 masks, one pair at a time.

    points_in_polygon(shape, vertices_rc): current scikit-image's by default, or
    grid_points_in_poly_crossing for the rule of the scikit-image 0.13 the original ran.
    """
    kp = named_keypoints(np.asarray(keypoints_target_yx))
    height, width = image_size
    st = torso_scale(kp)
    masks = [np.ones(image_size, dtype=np.float32)]
    head = [kp[name] for name in HEAD_NAMES if name in kp]
    head_mask = np.zeros(image_size, dtype=np.float32)
    if head:
        center = np.mean(np.array(head), axis=0).astype(int)
        radius = int(0.4 * st)
        low = np.maximum(center - radius, 0)
        high = np.minimum(center + radius, [width, height])
        head_mask[low[1]:high[1], low[0]:high[0]] = 1
    masks.append(head_mask)
    for start, end, mask_extension, _ in LIMBS:
        if start in kp and end in kp:
            polygon = limb_polygon(kp[start], kp[end], st, mask_extension)
            masks.append(points_in_polygon(image_size, polygon[:, ::-1]).astype(np.float32))
        else:
            masks.append(np.zeros(image_size, dtype=np.float32))
    return np.stack(masks)


def _mirrored(name):
    return ("L" + name[1:]) if name[0] == "R" else ("R" + name[1:])


def _fit(src, dst):
    """skimage's total least squares affine target -> source, or NO_POINT if it fails or is singular."""
    transform = skimage.transform.estimate_transform("affine", src=np.asarray(src), dst=np.asarray(dst))
    if not transform:
        return NO_POINT
    params = transform.params
    if not np.all(np.isfinite(params)):
        return NO_POINT
    try:
        np.linalg.inv(params)
    except np.linalg.LinAlgError:
        return NO_POINT
    return params


def part_affines(keypoints_source_yx, keypoints_target_yx):
    """(18, 2) source and target keypoints -> (10, 8) float64 target -> source affines."""
    kp1 = named_keypoints(np.asarray(keypoints_source_yx))
    kp2 = named_keypoints(np.asarray(keypoints_target_yx))
    st1, st2 = torso_scale(kp1), torso_scale(kp2)
    torso = ("Rhip", "Lhip", "Lsho", "Rsho")
    transforms = [_fit([kp2[n] for n in torso], [kp1[n] for n in torso])]
    head = [n for n in HEAD_NAMES if n in kp1 and n in kp2]
    if head:
        names = head + ["Lsho", "Rsho"]
        transforms.append(_fit([kp2[n] for n in names], [kp1[n] for n in names]))
    else:
        transforms.append(NO_POINT)
    for start, end, _, affine_extension in LIMBS:
        if not (start in kp2 and end in kp2):
            transforms.append(NO_POINT)
            continue
        target_poly = limb_polygon(kp2[start], kp2[end], st2, affine_extension)
        if not (start in kp1 and end in kp1):
            start, end = _mirrored(start), _mirrored(end)
        if not (start in kp1 and end in kp1):
            transforms.append(NO_POINT)
            continue
        source_poly = limb_polygon(kp1[start], kp1[end], st1, affine_extension)
        transforms.append(_fit(target_poly, source_poly))
    return np.array(transforms).reshape((-1, 9))[:, :8]


def grid_points_in_poly_crossing(shape, verts_rc):
    """scikit-image 0.13's even-odd crossing rule (points on an edge are not specially counted)."""
    rows = np.arange(shape[0], dtype=np.float64)[:, None]
    cols = np.arange(shape[1], dtype=np.float64)[None, :]
    inside = np.zeros(shape, dtype=bool)
    verts_rc = np.asarray(verts_rc, dtype=np.float64)
    for i in range(len(verts_rc)):
        ri, ci = verts_rc[i]
        rj, cj = verts_rc[i - 1]
        crosses = ((ci <= cols) & (cols < cj)) | ((cj <= cols) & (cols < ci))
        with np.errstate(divide="ignore", invalid="ignore"):
            row_cross = (rj - ri) * (cols - ci) / (cj - ci) + ri
        inside ^= crosses & (rows < row_cross)
    return inside
