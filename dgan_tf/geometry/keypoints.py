"""The 18-joint OpenPose/COCO keypoint layout and the ten rigid body parts.
The original's: pose-gan pose_utils.py:23-26 (LABELS) and pose_transform.py:125-166 (pose_masks) at 8693ec4.

Keypoint arrays are (..., 18, 2) in (row y, column x) order; -1 marks a missing joint.
"""

NUM_JOINTS = 18
MISSING = -1

JOINT_NAMES = (
    "nose", "neck",
    "r_shoulder", "r_elbow", "r_wrist",
    "l_shoulder", "l_elbow", "l_wrist",
    "r_hip", "r_knee", "r_ankle",
    "l_hip", "l_knee", "l_ankle",
    "eye_14", "eye_15", "ear_16", "ear_17",  # the original's L/R names look swapped: use indices
)

NOSE, NECK = 0, 1
R_SHOULDER, R_ELBOW, R_WRIST = 2, 3, 4
L_SHOULDER, L_ELBOW, L_WRIST = 5, 6, 7
R_HIP, R_KNEE, R_ANKLE = 8, 9, 10
L_HIP, L_KNEE, L_ANKLE = 11, 12, 13

# Torso joints: all four present makes an image valid for pairs (pose-gan pose_transform.py:89-91 at 8693ec4).
TORSO_JOINTS = (R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)
# Points used for the head part (pose-gan pose_transform.py:134 at 8693ec4): nose and the four eye/ear points.
HEAD_JOINTS = (NOSE, 14, 15, 16, 17)

NUM_PARTS = 10
PART_NAMES = (
    "torso", "head",
    "r_upper_leg", "l_upper_leg", "r_lower_leg", "l_lower_leg",
    "r_upper_arm", "l_upper_arm", "r_forearm", "l_forearm",
)
# Limb parts 2..9 as (part index, joint A, joint B, mirrored part index).
LIMBS = (
    (2, R_HIP, R_KNEE, 3),
    (3, L_HIP, L_KNEE, 2),
    (4, R_KNEE, R_ANKLE, 5),
    (5, L_KNEE, L_ANKLE, 4),
    (6, R_SHOULDER, R_ELBOW, 7),
    (7, L_SHOULDER, L_ELBOW, 6),
    (8, R_ELBOW, R_WRIST, 9),
    (9, L_ELBOW, L_WRIST, 8),
)

# Skeleton edges for drawing (0-based joint pairs).
SKELETON = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)

# Joints more than this many image sizes beyond a border are treated as missing (see sanitize_keypoints).
KEYPOINT_MARGIN = 100.0


def sanitize_keypoints(keypoints_yx, image_size, margin=KEYPOINT_MARGIN):
    """Keypoints (..., 18, 2) in (y, x) of any numeric dtype -> float32, invalid joints set to missing (-1, -1).

    A joint is missing when either coordinate is NaN or +-Inf, exactly -1 (the missing mark; one coordinate
    alone is not a joint), or outside [-margin * size, (1 + margin) * size) of its axis. Joints outside the frame
    are legitimate (a cropped person; the original keeps them) and are kept: a limb with one end in the frame draws
    its mask there however far the other end lies (a knee in a 128x64 frame with the ankle 260 px below: 870 mask
    pixels), so no finite bound keeps every mask of the original. Up to margin 100 (the default) the masks and
    affines are the original's; a person's joints lie within one body height of each other, so only a person more
    than about 100 frames tall can reach the frame from farther out, and the bounded values (below 101 image sizes:
    exact integers in float32, their squares and affine fits far below float32's limits) keep every later
    computation (float32 casts, affine fits, warp indices) finite. Beyond it a joint is missing: its limbs draw no
    mask and take the mirrored limb's or the no_point transform, a hip or shoulder leaves the torso scale to the other
    side, its heatmap (0 that far out anyway) stays 0. The test runs in the input's own dtype, before any cast
    that could overflow (1e36 in float64 would become inf in float32; both are out of range anyway), and bad
    values are replaced by selection (`where`), never by arithmetic: NaN * 0 is NaN. Each joint of each sample
    is decided on its own values only, so a bad sample cannot change the others of its batch. keras.ops only:
    runs in a model on TensorFlow and JAX, under XLA.
    """
    from keras import backend, ops

    from dgan_tf.images import ImageSize

    height, width = (float(v) for v in ImageSize.of(image_size))
    keypoints_yx = ops.convert_to_tensor(keypoints_yx)
    dtype = backend.standardize_dtype(keypoints_yx.dtype)
    if not (dtype.startswith("float") or dtype.startswith("bfloat")):
        # Integers are exact in float64 where the backend has it; anything beyond float32's range is far out anyway.
        keypoints_yx = ops.cast(keypoints_yx, "float32")
    y, x = keypoints_yx[..., 0], keypoints_yx[..., 1]

    def within(value, size):
        # Comparisons are False for NaN, and +-Inf fails one side: non-finite values are never within.
        low = ops.cast(-margin * size, value.dtype)
        high = ops.cast((1.0 + margin) * size, value.dtype)
        return ops.logical_and(ops.greater_equal(value, low), ops.less(value, high))

    keep = ops.logical_and(within(y, height), within(x, width))
    keep = ops.logical_and(keep, ops.logical_and(ops.not_equal(y, -1), ops.not_equal(x, -1)))  # (..., 18)
    safe = ops.where(keep[..., None], keypoints_yx, ops.cast(MISSING, keypoints_yx.dtype))
    return ops.cast(safe, "float32")
