"""The 18-joint OpenPose/COCO keypoint layout and the ten rigid body parts (SPEC §1-§2).

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

# Torso joints: all four present makes an image valid for pairs (SPEC §1).
TORSO_JOINTS = (R_SHOULDER, L_SHOULDER, R_HIP, L_HIP)
# Points used for the head part (SPEC §2): nose and the four eye/ear points.
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
# Lower limbs and forearms use the larger extension (SPEC §2).
EXTENDED_LIMB_PARTS = (4, 5, 8, 9)

# Skeleton edges for drawing (0-based joint pairs).
SKELETON = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10),
    (1, 11), (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
