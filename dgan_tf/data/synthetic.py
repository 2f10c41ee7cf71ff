"""Synthetic articulated figures in the original dataset layout: the project's embedded default data.

Each identity is a flat 2D figure made of the original's ten rigid parts (pose-gan pose_transform.py:125-166 at
8693ec4) with its own textures; each image is a new pose. Every part's texture is evaluated in the part's local
frame (origin at a joint, axes along / across the limb, scaled by the limb length and the torso scale st), so the
affine transforms computed from the keypoints as the original did (pose_transform.py:193-265) explain the motion of
the pixels.

Layout written by `make_synthetic_dataset(out_dir, ...)` (the original's, with `<ds>` = synthetic):

    out_dir/synthetic-dataset/{train,test}/<id>_<k>.jpg   ids zero-padded (0007_3.jpg), k from 0
    out_dir/synthetic-annotation-{train,test}.csv          18 joints (y, x), -1 missing / outside
    out_dir/synthetic-pairs-{train,test}.csv               same-id ordered pairs of valid images
    out_dir/synthetic-complete.json                        written last: the dataset is complete

Joints 14-17 follow OpenPose COCO-18: 14 right eye, 15 left eye, 16 right ear, 17 left ear.
"""

import json
import math
import multiprocessing
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgan_tf.geometry.keypoints import (
    L_ANKLE, L_ELBOW, L_HIP, L_KNEE, L_SHOULDER, L_WRIST, NECK, NOSE, NUM_JOINTS,
    R_ANKLE, R_ELBOW, R_HIP, R_KNEE, R_SHOULDER, R_WRIST, TORSO_JOINTS,
)
from dgan_tf.images import ImageSize
from dgan_tf.options import SPLITS

DATASET_NAME = "synthetic"
FORMAT_VERSION = 1
MARKER_NAME = "synthetic-complete.json"
IMAGE_FOLDER = "synthetic-dataset"
JPEG_QUALITY = 95
TEST_PAIR_SAMPLE = 12000  # min(12000, N) test pairs, seed 0, as pose-gan create_pairs_dataset.py:44 at 8693ec4

# Defaults: 200 identities x 10 images = 2,000 images, 20 identities (200 images) held out for test.
DEFAULT_IMAGE_SIZE = (128, 64)
DEFAULT_IDENTITIES = 200
DEFAULT_IMAGES_PER_IDENTITY = 10
DEFAULT_TEST_FRACTION = 0.1

R_EYE, L_EYE, R_EAR, L_EAR = 14, 15, 16, 17
NECK_PART = 10  # label of the neck in part maps (not one of the ten parts); -1 = background
PATTERNS = ("stripes", "checks", "dots", "gradient", "zigzag")
SIDE_VIEW_COS = 0.42  # |cos(yaw)| below this is a side view (profile-style limbs, overlapping sides)
EDGE_WIDTH = 1.8  # soft pattern edges, in reference pixels: nearest-neighbour warps stay accurate
BODY_HEIGHT = 3.55  # head top to ankles in torso units (shoulder-hip distance = 1), standing pose

# Unit-sphere positions (X = person's left, Y = down, Z = forward) of the face keypoints.
_FACE_POINTS = {
    NOSE: (0.0, 0.12, 1.0),
    R_EYE: (-0.38, -0.12, 0.92),
    L_EYE: (0.38, -0.12, 0.92),
    R_EAR: (-0.98, 0.05, -0.12),
    L_EAR: (0.98, 0.05, -0.12),
}


# ---------------------------------------------------------------------------------------------------
# Identities and poses


@dataclass(frozen=True)
class Texture:
    """A two-colour pattern over a part's local frame; coordinates are pixels of the reference scale."""

    kind: str
    color_a: tuple
    color_b: tuple
    period: float
    angle: float
    phase: float


@dataclass(frozen=True)
class Identity:
    """One person: body proportions (torso units) and textures, kept across all of their images."""

    body: dict
    torso: Texture
    upper_arm: Texture
    forearm: Texture
    upper_leg: Texture
    lower_leg: Texture
    skin: tuple
    hair: tuple


@dataclass(frozen=True)
class Pose:
    """A figure placed in the image: joints (18, 2) in (x, y) float pixels, plus view and draw details."""

    joints_xy: np.ndarray  # (18, 2) true positions, face points included even when hidden
    face_visible: dict  # joint -> bool, face keypoints facing the camera
    yaw: float  # radians; 0 front, pi back, +-pi/2 profile
    side_view: bool
    near_side: str  # "r" or "l": the side drawn last
    scale: float  # pixels per torso unit
    lean: float  # radians, whole-body in-plane rotation
    head_angle: float  # radians, head in-plane rotation (lean + tilt)
    head_center_xy: tuple
    torso_affine: np.ndarray  # (2, 3) canonical torso units -> image (x, y)


def _color(rng, value_range=(0.2, 0.95), saturation_range=(0.3, 0.9)):
    """A random RGB colour in [0, 255] from HSV ranges."""
    h, s, v = rng.uniform(0, 1), rng.uniform(*saturation_range), rng.uniform(*value_range)
    i, f = int(h * 6) % 6, h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    rgb = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]
    return tuple(float(255 * c) for c in rgb)


def _contrasting_pair(rng):
    """Two colours whose brightness differs enough that the pattern is visible."""
    a = _color(rng)
    for _ in range(20):
        b = _color(rng)
        if abs(np.mean(a) - np.mean(b)) > 55 or np.abs(np.subtract(a, b)).max() > 110:
            return a, b
    return a, tuple(255.0 - c for c in a)


def _sample_texture(rng, kinds=PATTERNS):
    a, b = _contrasting_pair(rng)
    return Texture(
        kind=str(rng.choice(kinds)), color_a=a, color_b=b, period=float(rng.uniform(6.0, 13.0)),
        angle=float(rng.uniform(0, math.pi)), phase=float(rng.uniform(0, 1)),
    )


def sample_identity(rng):
    """Body proportions and per-part textures of one person (left and right limbs look alike)."""
    body = {
        "shoulder_width": rng.uniform(0.6, 0.76), "hip_width": rng.uniform(0.44, 0.58),
        "torso_margin": rng.uniform(0.06, 0.12), "torso_depth": rng.uniform(0.35, 0.5),
        "neck_length": rng.uniform(0.12, 0.2), "head_radius": rng.uniform(0.2, 0.25),
        "upper_arm": rng.uniform(0.58, 0.68), "forearm": rng.uniform(0.52, 0.6),
        "upper_leg": rng.uniform(0.82, 0.92), "lower_leg": rng.uniform(0.78, 0.88),
        "arm_width": rng.uniform(0.08, 0.11), "leg_width": rng.uniform(0.11, 0.15),
    }
    skin = _color(rng, value_range=(0.35, 0.95), saturation_range=(0.2, 0.55))
    hair = _color(rng, value_range=(0.05, 0.6), saturation_range=(0.1, 0.7))
    return Identity(
        body={k: float(v) for k, v in body.items()},
        torso=_sample_texture(rng), upper_arm=_sample_texture(rng), forearm=_sample_texture(rng),
        upper_leg=_sample_texture(rng), lower_leg=_sample_texture(rng), skin=skin, hair=hair,
    )


def _rotation(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _direction(angle):
    """Unit (x, y) vector at `angle` from straight down, positive towards +x."""
    return np.array([math.sin(angle), math.cos(angle)])


def _sample_limb_angles(rng, side_view, facing, right_x):
    """Image-plane angles (radians, from the body's down axis) of the 8 limb segments, plus length factors.

    facing: +1/-1, the image x direction the person faces in profile. right_x: the image x
    direction of the person's right side in frontal and back views.
    """
    deg = math.radians
    angles, lengths = {}, {}
    if side_view:
        stride = rng.uniform(-35, 35)
        for side, sign in (("r", 1.0), ("l", -1.0)):
            hip = sign * stride + rng.normal(0, 4)
            knee = rng.uniform(0, 45) if rng.uniform() < 0.8 else rng.uniform(45, 100)
            shoulder = -0.8 * sign * stride + rng.normal(0, 8)
            elbow = rng.uniform(0, 50) if rng.uniform() < 0.8 else rng.uniform(50, 110)
            angles[side + "_upper_leg"] = facing * deg(hip)
            angles[side + "_lower_leg"] = facing * deg(hip - knee)
            angles[side + "_upper_arm"] = facing * deg(shoulder)
            angles[side + "_forearm"] = facing * deg(shoulder + elbow)
            lengths[side + "_forearm"] = rng.uniform(0.85, 1.0)
    else:
        for side, outward in (("r", right_x), ("l", -right_x)):
            raised = rng.uniform() < 0.08
            abduction = rng.uniform(60, 160) if raised else float(np.clip(rng.normal(12, 10), -5, 60))
            elbow = rng.uniform(0, 30) if rng.uniform() < 0.75 else rng.uniform(30, 120)
            hip = float(np.clip(rng.normal(6, 5), -8, 30))
            knee = rng.normal(0, 4) if rng.uniform() < 0.85 else rng.uniform(-20, 30)
            angles[side + "_upper_arm"] = outward * deg(abduction)
            angles[side + "_forearm"] = outward * deg(abduction - elbow)
            angles[side + "_upper_leg"] = outward * deg(hip)
            angles[side + "_lower_leg"] = outward * deg(hip + knee)
            lengths[side + "_forearm"] = rng.uniform(0.8, 1.0) if elbow > 45 else rng.uniform(0.95, 1.0)
    for name in angles:
        lengths[name] = lengths.get(name, 1.0) * rng.uniform(0.92, 1.0)  # mild foreshortening
    return angles, lengths


def _sample_yaw(rng):
    """Body yaw: mostly frontal or back views, some profiles (side views), a few three-quarter views."""
    u = rng.uniform()
    if u < 0.45:
        yaw = rng.uniform(-35, 35)
    elif u < 0.7:
        yaw = 180 + rng.uniform(-35, 35)
    elif u < 0.9:  # |cos(yaw)| in [0.12, 0.41]: shoulders and hips close together
        yaw = rng.choice([-1, 1]) * (90 + rng.choice([-1, 1]) * rng.uniform(7, 24))
    else:
        yaw = rng.choice([-1, 1]) * rng.uniform(35, 60)
    return math.radians(yaw)


def sample_pose(identity, image_size, rng):
    """A random pose of `identity` placed in an (H, W) image: joint positions and view parameters."""
    height, width = image_size
    body = identity.body
    yaw = _sample_yaw(rng)
    cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
    side_view = abs(cos_yaw) < SIDE_VIEW_COS
    lean = math.radians(rng.normal(0, 3.5))
    head_angle = lean + math.radians(rng.normal(0, 7))
    scale = height * rng.uniform(0.74, 0.92) / BODY_HEIGHT

    # Torso: canonical corners (X = person's left, Y down, torso units) -> image by an exact affine,
    # so the torso texture follows the affine of the four torso joints.
    linear = _rotation(lean) @ np.diag([cos_yaw, 1.0]) * scale  # (2, 2)
    sw, hw = body["shoulder_width"] / 2, body["hip_width"] / 2
    canonical = {R_SHOULDER: (-sw, 0.0), L_SHOULDER: (sw, 0.0), R_HIP: (-hw, 1.0), L_HIP: (hw, 1.0)}
    joints = np.zeros((NUM_JOINTS, 2))
    for j, p in canonical.items():
        joints[j] = linear @ np.array(p)
    joints[NECK] = (joints[R_SHOULDER] + joints[L_SHOULDER]) / 2

    right_x = -1.0 if cos_yaw >= 0 else 1.0
    facing = 1.0 if sin_yaw >= 0 else -1.0
    angles, factors = _sample_limb_angles(rng, side_view, facing, right_x)
    for side, (sho, elb, wri, hip, kne, ank) in (
        ("r", (R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE)),
        ("l", (L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE)),
    ):
        for a, b, limb in ((sho, elb, "upper_arm"), (elb, wri, "forearm"), (hip, kne, "upper_leg"),
                           (kne, ank, "lower_leg")):
            length = body[limb] * factors[f"{side}_{limb}"] * scale
            joints[b] = joints[a] + length * _direction(lean + angles[f"{side}_{limb}"])

    # Head: a sphere of radius r (vertical radius 1.15 r) above the neck, rotated by the yaw.
    radius = body["head_radius"] * scale
    up = -_direction(head_angle)
    head_center = joints[NECK] + (body["neck_length"] * scale + 1.15 * radius) * up
    head_rotation = _rotation(head_angle)
    face_visible = {}
    for j, (x3, y3, z3) in _FACE_POINTS.items():
        image_x = x3 * cos_yaw + z3 * sin_yaw
        depth = -x3 * sin_yaw + z3 * cos_yaw
        face_visible[j] = bool(depth > -0.2)
        joints[j] = head_center + head_rotation @ np.array([image_x * radius, 1.15 * y3 * radius])

    # Placement: centre the figure's extent, sometimes push it partly out of the frame.
    top = min(joints[:, 1].min(), head_center[1] - 1.15 * radius)
    bottom, left, right = joints[:, 1].max(), joints[:, 0].min(), joints[:, 0].max()
    offset = np.array([
        width / 2 - (left + right) / 2 + rng.normal(0, 0.05 * width),
        height / 2 - (top + bottom) / 2 + rng.normal(0, 0.025 * height),
    ])
    if rng.uniform() < 0.06:  # partly out of the frame, sideways or downwards
        axis = int(rng.integers(2))
        offset[axis] += rng.choice([-1, 1]) * rng.uniform(0.15, 0.35) * (width, height)[axis]
    joints = joints + offset
    head_center = head_center + offset
    torso_affine = np.concatenate([linear, offset[:, None]], axis=1)  # (2, 3)
    near_side = "r" if sin_yaw >= 0 else "l"
    return Pose(
        joints_xy=joints, face_visible=face_visible, yaw=yaw, side_view=side_view, near_side=near_side,
        scale=scale, lean=lean, head_angle=head_angle, head_center_xy=tuple(head_center),
        torso_affine=torso_affine,
    )


# ---------------------------------------------------------------------------------------------------
# Rendering


def _smooth_square(t, sharpness):
    """A square wave in [0, 1] of period 1 with soft edges (about 1/sharpness wide)."""
    return np.clip(0.5 + sharpness * np.sin(2 * np.pi * t), 0.0, 1.0)


def _texture_colors(texture, u, v):
    """RGB (N, 3) of `texture` at local coordinates u, v (N,), in reference pixels."""
    period = texture.period
    c, s = math.cos(texture.angle), math.sin(texture.angle)
    along = (c * u + s * v) / period + texture.phase  # (N,)
    across = (-s * u + c * v) / period + texture.phase
    sharp = period / (2 * np.pi * EDGE_WIDTH)  # edges about EDGE_WIDTH reference pixels wide
    if texture.kind == "stripes":
        mix = _smooth_square(along, sharp)
    elif texture.kind == "checks":
        mix = np.abs(_smooth_square(along, sharp) - _smooth_square(across, sharp))
    elif texture.kind == "dots":
        du, dv = along - np.round(along), across - np.round(across)
        mix = np.clip((np.hypot(du, dv) - 0.28) * period / EDGE_WIDTH, 0.0, 1.0)
    elif texture.kind == "gradient":  # a slow ramp with thin bands so rotation stays visible
        ramp = np.abs(np.mod(along / 3.0, 1.0) * 2 - 1)
        mix = np.maximum(ramp, _smooth_square(across, sharp) * 0.6)
    elif texture.kind == "zigzag":
        mix = _smooth_square(along + 0.35 * np.abs(np.mod(across, 1.0) - 0.5) * 2, sharp)
    else:
        raise ValueError(f"Unknown texture kind. Received: kind={texture.kind!r}, expected one of {PATTERNS}")
    a, b = np.asarray(texture.color_a), np.asarray(texture.color_b)
    return a + mix[:, None] * (b - a)  # (N, 3)


class _Canvas:
    """An image being painted part by part, with a part map of who owns each pixel."""

    def __init__(self, image_size, background):
        self.height, self.width = image_size
        self.image = np.empty((self.height, self.width, 3), np.float32)
        self.image[:] = background
        self.part_map = np.full((self.height, self.width), -1, np.int8)

    def window(self, points_xy, pad):
        """Pixel-centre coordinates (h, w) of the clipped bounding box of points +- pad, or None if empty."""
        x0 = max(int(math.floor(points_xy[:, 0].min() - pad)), 0)
        x1 = min(int(math.ceil(points_xy[:, 0].max() + pad)) + 1, self.width)
        y0 = max(int(math.floor(points_xy[:, 1].min() - pad)), 0)
        y1 = min(int(math.ceil(points_xy[:, 1].max() + pad)) + 1, self.height)
        if x0 >= x1 or y0 >= y1:
            return None
        xs = np.arange(x0, x1, dtype=np.float64)[None, :]  # (1, w), broadcasts against ys
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]  # (h, 1)
        return (slice(y0, y1), slice(x0, x1)), xs, ys

    def paint(self, box, coverage, colors, label):
        """Alpha-blend colors (N, 3) where coverage (h, w) > 0; pixels over half covered get `label`."""
        inside = coverage > 0  # (h, w)
        if not inside.any():
            return
        alpha = coverage[inside][:, None]  # (N, 1)
        region = self.image[box]  # view
        region[inside] = region[inside] * (1 - alpha) + colors * alpha
        labels = self.part_map[box]
        labels[coverage > 0.5] = label


def _paint_limb(canvas, a, b, half_width, st, length_ref, texture, label, reference):
    """A rounded rectangle around segment a-b whose texture lives in the limb's frame."""
    window = canvas.window(np.stack([a, b]), half_width + 2)
    if window is None:
        return
    box, xs, ys = window
    axis = b - a
    length = float(np.hypot(*axis))
    d = axis / max(length, 1e-6)
    n = np.array([-d[1], d[0]])
    px, py = xs - a[0], ys - a[1]
    along = px * d[0] + py * d[1]  # (h, w) pixels from a along the limb
    across = px * n[0] + py * n[1]
    t = np.clip(along, 0.0, length)
    distance = np.hypot(along - t, across)  # to the segment
    coverage = np.clip(half_width + 0.5 - distance, 0.0, 1.0)
    inside = coverage > 0
    u = along[inside] / max(length, 1e-6) * length_ref * reference
    v = across[inside] / st * reference
    canvas.paint(box, coverage, _texture_colors(texture, u, v), label)


def _paint_torso(canvas, pose, identity, reference):
    """The quadrilateral through the four torso joints (widened by the body depth in profile)."""
    body = identity.body
    m = body["torso_margin"]
    sw, hw = body["shoulder_width"] / 2 + m, body["hip_width"] / 2 + m
    corners = np.array([(-sw, -0.06), (sw, -0.06), (hw, 1.08), (-hw, 1.08)])  # canonical, clockwise
    affine = pose.torso_affine  # (2, 3)
    image_corners = corners @ affine[:, :2].T + affine[:, 2]
    # Profile views show the body's depth: push the left/right edges apart along the body x axis.
    extra = 0.5 * body["torso_depth"] * abs(math.sin(pose.yaw)) * pose.scale
    x_axis = _rotation(pose.lean) @ np.array([1.0, 0.0])
    sign = np.sign(math.cos(pose.yaw)) or 1.0
    image_corners = image_corners + np.array([-1, 1, 1, -1])[:, None] * sign * extra * x_axis
    window = canvas.window(image_corners, 2)
    if window is None:
        return
    box, xs, ys = window
    # Signed distance to a convex polygon: max over edges of the outward distance.
    orientation = np.sign(_polygon_area(image_corners)) or 1.0
    shape = (ys.shape[0], xs.shape[1])
    distance = np.full(shape, -np.inf)
    for i in range(4):
        p, q = image_corners[i], image_corners[(i + 1) % 4]
        e = q - p
        outward = orientation * np.array([e[1], -e[0]]) / max(np.hypot(*e), 1e-6)
        distance = np.maximum(distance, (xs - p[0]) * outward[0] + (ys - p[1]) * outward[1])
    coverage = np.clip(0.5 - distance, 0.0, 1.0)
    inside = coverage > 0
    inverse = np.linalg.inv(affine[:, :2])
    points = np.stack([np.broadcast_to(xs, shape)[inside], np.broadcast_to(ys, shape)[inside]], -1)  # (N, 2)
    local = (points - affine[:, 2]) @ inverse.T  # (N, 2) torso units
    colors = _texture_colors(identity.torso, local[:, 0] * reference, local[:, 1] * reference)
    canvas.paint(box, coverage, colors, 0)


def _polygon_area(points):
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _paint_head(canvas, pose, identity):
    """An unshaded sphere seen under the body yaw: skin face, hair on top and back, dark eyes."""
    radius = identity.body["head_radius"] * pose.scale
    center = np.asarray(pose.head_center_xy)
    window = canvas.window(center[None], 1.15 * radius + 2)
    if window is None:
        return
    box, xs, ys = window
    inverse = _rotation(-pose.head_angle)
    lx = (inverse[0, 0] * (xs - center[0]) + inverse[0, 1] * (ys - center[1])) / radius
    ly = (inverse[1, 0] * (xs - center[0]) + inverse[1, 1] * (ys - center[1])) / (1.15 * radius)
    rho = np.hypot(lx, ly)
    coverage = np.clip((1.0 - rho) * radius + 0.5, 0.0, 1.0)
    inside = coverage > 0
    x, y = lx[inside], ly[inside]
    depth = np.sqrt(np.clip(1.0 - x * x - y * y, 0.0, 1.0))
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    person_x, person_z = x * c - depth * s, x * s + depth * c  # back to the person's frame
    hair = (y < -0.35 + 0.1 * person_x) | (person_z < -0.1)
    colors = np.where(hair[:, None], np.asarray(identity.hair), np.asarray(identity.skin))
    for eye in (R_EYE, L_EYE):
        ex, ey, ez = _FACE_POINTS[eye]
        near = np.sqrt((person_x - ex) ** 2 + (y - ey) ** 2 + (person_z - ez) ** 2) < 0.16
        colors = np.where(near[:, None], np.array([25.0, 20.0, 20.0]), colors)
    canvas.paint(box, coverage, colors, 1)


# (side, segment) -> (part index in the original's order, joint A, joint B); segment names key body sizes and
# textures. The order: pose-gan pose_transform.py:131-164 at 8693ec4.
_LIMB_SEGMENTS = {
    ("r", "upper_arm"): (6, R_SHOULDER, R_ELBOW), ("l", "upper_arm"): (7, L_SHOULDER, L_ELBOW),
    ("r", "forearm"): (8, R_ELBOW, R_WRIST), ("l", "forearm"): (9, L_ELBOW, L_WRIST),
    ("r", "upper_leg"): (2, R_HIP, R_KNEE), ("l", "upper_leg"): (3, L_HIP, L_KNEE),
    ("r", "lower_leg"): (4, R_KNEE, R_ANKLE), ("l", "lower_leg"): (5, L_KNEE, L_ANKLE),
}


def render_figure(identity, pose, image_size, rng):
    """Paint `pose` of `identity` -> (image uint8 (H, W, 3), part_map int8 (H, W)).

    Draw order gives the occlusions: far arm, far leg, torso, near leg, neck, head, near arm.
    part_map holds the part index (the order of pose-gan pose_transform.py:131-164 at 8693ec4) owning each pixel,
    NECK_PART for the neck, -1 background.
    """
    reference = image_size[0] / BODY_HEIGHT  # texture units: pixels of a figure at nominal scale
    background = np.array([rng.uniform(175, 245) for _ in range(3)])
    canvas = _Canvas(image_size, background)
    joints = pose.joints_xy
    body = identity.body
    st = _torso_scale(joints)

    def limb(side, segment):
        label, a, b = _LIMB_SEGMENTS[(side, segment)]
        width_key = "arm_width" if segment in ("upper_arm", "forearm") else "leg_width"
        _paint_limb(canvas, joints[a], joints[b], body[width_key] * st, st, body[segment],
                    getattr(identity, segment), label, reference)

    far = "l" if pose.near_side == "r" else "r"
    limb(far, "upper_arm")
    limb(far, "forearm")
    limb(far, "lower_leg")
    limb(far, "upper_leg")
    _paint_torso(canvas, pose, identity, reference)
    limb(pose.near_side, "lower_leg")
    limb(pose.near_side, "upper_leg")
    neck_top = np.asarray(pose.head_center_xy)
    neck_texture = Texture("stripes", identity.skin, identity.skin, 5.0, 0.0, 0.0)
    _paint_limb(canvas, joints[NECK], neck_top, 0.09 * st, st, 1.0, neck_texture, NECK_PART, reference)
    _paint_head(canvas, pose, identity)
    limb(pose.near_side, "upper_arm")
    limb(pose.near_side, "forearm")

    noise = rng.standard_normal(size=canvas.image.shape, dtype=np.float32) * np.float32(rng.uniform(2.0, 5.0))
    noise += canvas.image
    image = np.clip(np.rint(noise), 0, 255).astype(np.uint8)
    return image, canvas.part_map


def _torso_scale(joints_xy):
    """st = sqrt(mean(|Rhip - Rsho|^2, |Lhip - Lsho|^2)) (pose-gan pose_transform.py:101-104 at 8693ec4)."""
    right = np.sum((joints_xy[R_HIP] - joints_xy[R_SHOULDER]) ** 2)
    left = np.sum((joints_xy[L_HIP] - joints_xy[L_SHOULDER]) ** 2)
    return float(np.sqrt((right + left) / 2))


# ---------------------------------------------------------------------------------------------------
# Keypoints as a detector would report them


# Detector failures: (joints to drop, relative weight); forearm, lower leg, head point, torso joint.
_FAILURES = (
    ((R_WRIST,), 0.18), ((L_WRIST,), 0.18), ((R_ANKLE,), 0.12), ((L_ANKLE,), 0.12),
    ((R_ELBOW, R_WRIST), 0.05), ((L_ELBOW, L_WRIST), 0.05), ((R_KNEE,), 0.03), ((L_KNEE,), 0.03),
    ((NOSE,), 0.05), ((R_EYE,), 0.03), ((L_EYE,), 0.03), ((R_EAR, L_EAR), 0.03),
    ((R_SHOULDER,), 0.01), ((L_SHOULDER,), 0.01), ((R_HIP,), 0.015), ((L_HIP,), 0.015),
)
# Parts adjacent to each joint: a joint painted over by any other part counts as occluded.
_JOINT_PARTS = {
    NOSE: (1,), NECK: (0, 1, NECK_PART), R_SHOULDER: (0, 6), R_ELBOW: (6, 8), R_WRIST: (8,),
    L_SHOULDER: (0, 7), L_ELBOW: (7, 9), L_WRIST: (9,), R_HIP: (0, 2), R_KNEE: (2, 4), R_ANKLE: (4,),
    L_HIP: (0, 3), L_KNEE: (3, 5), L_ANKLE: (5,), R_EYE: (1,), L_EYE: (1,), R_EAR: (1,), L_EAR: (1,),
}


def detected_keypoints(pose, part_map, rng):
    """The (18, 2) int (y, x) keypoints a detector would report: -1 for hidden, failed or outside joints.

    Face points turned away from the camera are missing; a joint covered by an unrelated part is
    dropped half of the time (torso joints a tenth); random failures drop a wrist, ankle, head
    point or, rarely, a torso joint (the image is then invalid for pairs).
    """
    height, width = part_map.shape
    yx = np.rint(pose.joints_xy[:, ::-1]).astype(np.int64)  # (18, 2)
    missing = np.zeros(NUM_JOINTS, bool)
    for j, visible in pose.face_visible.items():
        missing[j] |= not visible
    inside = (yx[:, 0] >= 0) & (yx[:, 0] < height) & (yx[:, 1] >= 0) & (yx[:, 1] < width)
    missing |= ~inside
    for j in range(NUM_JOINTS):
        covered = inside[j] and part_map[yx[j, 0], yx[j, 1]] not in _JOINT_PARTS[j]
        drop_probability = 0.1 if j in TORSO_JOINTS or j == NECK else 0.5  # detectors infer the torso well
        if covered and rng.uniform() < drop_probability:
            missing[j] = True
    weights = np.array([w for _, w in _FAILURES])
    failures = rng.choice([0, 1, 2], p=[0.55, 0.33, 0.12])
    for index in rng.choice(len(_FAILURES), size=failures, replace=False, p=weights / weights.sum()):
        missing[list(_FAILURES[index][0])] = True
    if rng.uniform() < 0.06:  # the head was not detected at all
        missing[[NOSE, R_EYE, L_EYE, R_EAR, L_EAR]] = True
    yx[missing] = -1
    return yx


# ---------------------------------------------------------------------------------------------------
# One image, deterministic for (seed, identity, image index)


@dataclass(frozen=True)
class SyntheticImage:
    """One generated image with its detected keypoints, its part map and the pose behind it."""

    image: np.ndarray  # (H, W, 3) uint8
    keypoints_yx: np.ndarray  # (18, 2) int, -1 missing
    part_map: np.ndarray  # (H, W) int8, part index, NECK_PART, or -1 background
    pose: Pose


def identity_appearance(seed, identity_index):
    """The Identity of person `identity_index` for a dataset seed (independent of the image size)."""
    return sample_identity(np.random.default_rng([int(seed), 0, int(identity_index)]))


def synthesize_image(seed, identity_index, image_index, image_size=DEFAULT_IMAGE_SIZE, identity=None):
    """Image `image_index` of person `identity_index`: the same arguments always give the same arrays."""
    image_size = _check_image_size(image_size)
    identity = identity or identity_appearance(seed, identity_index)
    rng = np.random.default_rng([int(seed), 1, int(identity_index), int(image_index)])
    pose = sample_pose(identity, image_size, rng)
    image, part_map = render_figure(identity, pose, image_size, rng)
    keypoints = detected_keypoints(pose, part_map, rng)
    return SyntheticImage(image=image, keypoints_yx=keypoints, part_map=part_map, pose=pose)


def sample_poses(identities, images_per_identity, image_size=DEFAULT_IMAGE_SIZE, seed=0):
    """Keypoints (N, 18, 2) and side-view flags (N,) of a dataset's images, in memory, no files."""
    keypoints, side_views = [], []
    for i in range(identities):
        identity = identity_appearance(seed, i)
        for k in range(images_per_identity):
            sample = synthesize_image(seed, i, k, image_size, identity=identity)
            keypoints.append(sample.keypoints_yx)
            side_views.append(sample.pose.side_view)
    return np.stack(keypoints), np.array(side_views)


# ---------------------------------------------------------------------------------------------------
# The dataset on disk


def _check_image_size(image_size):
    size = ImageSize.of(image_size)
    if size.height < 32 or size.width < 16:
        raise ValueError(f"image_size must be (height, width) with height >= 32 and width >= 16. "
                         f"Received: image_size={image_size!r}")
    return size


def _check_counts(identities, images_per_identity, test_fraction):
    for name, value in (("identities", identities), ("images_per_identity", images_per_identity)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer. Received: {name}={value!r}")
    if not isinstance(test_fraction, (int, float)) or not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be a number in (0, 1). Received: test_fraction={test_fraction!r}")
    test_ids = max(1, int(round(identities * test_fraction)))
    if identities - test_ids < 1:
        raise ValueError(f"Need at least one training and one test identity. Received: identities={identities}, "
                         f"test_fraction={test_fraction}")
    return identities - test_ids, test_ids


def split_identities(identities, test_fraction):
    """{'train': range, 'test': range} of identity indices: the last round(N * fraction) are test."""
    train_ids, _ = _check_counts(identities, 1, test_fraction)
    return {"train": range(0, train_ids), "test": range(train_ids, identities)}


def image_name(identity_index, image_index, identities):
    """`<id>_<k>.jpg` with the id zero-padded to at least 4 digits (Market style)."""
    digits = max(4, len(str(identities - 1)))
    return f"{identity_index:0{digits}d}_{image_index}.jpg"


def _write_identity(task):
    """Render and write all images of one identity (a worker task); returns names, keypoints, side views."""
    import imageio.v3 as iio

    folder, identity_index, images_per_identity, image_size, seed, identities = task
    identity = identity_appearance(seed, identity_index)
    names, keypoints, side_views = [], [], 0
    for k in range(images_per_identity):
        sample = synthesize_image(seed, identity_index, k, image_size, identity=identity)
        name = image_name(identity_index, k, identities)
        # 4:4:4 chroma: the default 4:2:0 halves the colour resolution of thin patterned limbs.
        iio.imwrite(Path(folder) / name, sample.image, extension=".jpg", quality=JPEG_QUALITY, subsampling=0)
        names.append(name)
        keypoints.append(sample.keypoints_yx)
        side_views += bool(sample.pose.side_view)
    return names, keypoints, side_views


def _resolve_workers(workers, total_images):
    """Worker processes to use: None picks up to 2 (one for small datasets, where start-up would dominate)."""
    if workers is None:
        return 1 if total_images < 400 else max(1, min(2, os.cpu_count() or 1))
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer or None. Received: workers={workers!r}")
    return int(workers)


def _write_split(root, split, ids, images_per_identity, image_size, seed, identities, pool):
    """Render and write one split's JPEGs and annotation CSV; returns names, keypoints, side-view count.

    Every image has its own seed, so the result is the same with or without worker processes.
    """
    from dgan_tf.data import annotations

    folder = root / IMAGE_FOLDER / split
    folder.mkdir(parents=True, exist_ok=True)
    tasks = [(str(folder), i, images_per_identity, image_size, seed, identities) for i in ids]
    results = pool.map(_write_identity, tasks, chunksize=4) if pool is not None else map(_write_identity, tasks)
    names, keypoints, side_views = [], [], 0
    for identity_names, identity_keypoints, identity_side_views in results:  # in identity order
        names += identity_names
        keypoints += identity_keypoints
        side_views += identity_side_views
    keypoints = np.stack(keypoints).astype(np.int64)  # (N, 18, 2)
    annotations.write_annotations(root / f"{DATASET_NAME}-annotation-{split}.csv", names, keypoints)
    return names, keypoints, side_views


def _output_paths(out_dir):
    """The dataset's top-level entries inside out_dir (the image folder and the four CSVs)."""
    files = [f"{DATASET_NAME}-{kind}-{split}.csv" for kind in ("annotation", "pairs") for split in SPLITS]
    return [IMAGE_FOLDER] + files


def make_synthetic_dataset(out_dir, image_size=DEFAULT_IMAGE_SIZE, identities=DEFAULT_IDENTITIES,
                           images_per_identity=DEFAULT_IMAGES_PER_IDENTITY, seed=0,
                           test_fraction=DEFAULT_TEST_FRACTION, workers=None):
    """Generate the dataset into out_dir (replacing any previous one there) and return a summary dict.

    Built in a hidden temporary folder inside out_dir, moved into place, then the completion
    marker is written last: an interrupted run never looks complete. workers: processes rendering
    in parallel (None: up to 2); the files are identical for any number of workers.
    """
    from dgan_tf.data import annotations, pairs

    image_size = _check_image_size(image_size)
    _check_counts(identities, images_per_identity, test_fraction)
    workers = _resolve_workers(workers, identities * images_per_identity)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    parameters = {
        "image_size": list(image_size), "identities": int(identities),
        "images_per_identity": int(images_per_identity), "seed": int(seed), "test_fraction": float(test_fraction),
    }
    summary = {"format_version": FORMAT_VERSION, "dataset": DATASET_NAME, "parameters": parameters, "splits": {}}
    work = Path(tempfile.mkdtemp(prefix=".synthetic-tmp-", dir=out_dir))
    # spawn, not fork: the caller may already run TensorFlow threads, which fork can deadlock.
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        for split, ids in split_identities(identities, test_fraction).items():
            names, keypoints, side_views = _write_split(work, split, ids, images_per_identity, image_size, seed,
                                                        identities, pool)
            table = annotations.KeypointTable(tuple(names), keypoints)
            sample = TEST_PAIR_SAMPLE if split == "test" else None
            split_pairs = pairs.make_pairs(table, dataset=DATASET_NAME, sample=sample, seed=0)
            annotations.write_pairs(work / f"{DATASET_NAME}-pairs-{split}.csv", split_pairs)
            torso = keypoints[:, list(TORSO_JOINTS), 0] != -1
            summary["splits"][split] = {
                "identities": len(ids), "images": len(names), "pairs": int(len(split_pairs)),
                "valid_images": int(torso.all(axis=1).sum()),
                "images_with_missing_joints": int((keypoints[..., 0] == -1).any(axis=1).sum()),
                "side_views": int(side_views),
            }
        _install(work, out_dir)
        annotations.atomic_write_text(out_dir / MARKER_NAME, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        shutil.rmtree(work, ignore_errors=True)
    return {**summary, "out_dir": str(out_dir), "seconds": round(time.perf_counter() - start, 3)}


def _install(work, out_dir):
    """Move the finished entries from `work` into out_dir, after removing the marker and old entries."""
    marker = out_dir / MARKER_NAME
    if marker.exists():
        marker.unlink()
    trash = work / ".old"
    trash.mkdir()
    for entry in _output_paths(out_dir):
        target = out_dir / entry
        if target.exists() or target.is_symlink():
            os.replace(target, trash / entry)
        os.replace(work / entry, target)


def read_summary(out_dir):
    """The completion marker's summary dict, or None when the dataset in out_dir is not complete."""
    out_dir = Path(out_dir)
    try:
        summary = json.loads((out_dir / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or summary.get("format_version") != FORMAT_VERSION:
        return None
    if not all((out_dir / entry).exists() for entry in _output_paths(out_dir)):
        return None
    return summary


def is_complete(out_dir):
    """True when out_dir holds a fully written synthetic dataset (marker written last, all entries present)."""
    return read_summary(out_dir) is not None


def ensure_synthetic_dataset(out_dir, image_size=DEFAULT_IMAGE_SIZE, **kwargs):
    """Generate the dataset in out_dir unless a complete one with the same parameters is there already.

    kwargs: identities, images_per_identity, seed, test_fraction, workers (as make_synthetic_dataset).
    Returns the summary; `generated` says whether this call wrote it.
    """
    unknown = set(kwargs) - {"identities", "images_per_identity", "seed", "test_fraction", "workers"}
    if unknown:
        raise TypeError(f"Unexpected arguments for ensure_synthetic_dataset. Received: {sorted(unknown)}")
    wanted = {
        "image_size": list(_check_image_size(image_size)),
        "identities": kwargs.get("identities", DEFAULT_IDENTITIES),
        "images_per_identity": kwargs.get("images_per_identity", DEFAULT_IMAGES_PER_IDENTITY),
        "seed": kwargs.get("seed", 0),
        "test_fraction": kwargs.get("test_fraction", DEFAULT_TEST_FRACTION),
    }
    _check_counts(wanted["identities"], wanted["images_per_identity"], wanted["test_fraction"])
    summary = read_summary(out_dir)
    if summary is not None and summary.get("parameters") == wanted:
        return {**summary, "out_dir": str(out_dir), "generated": False}
    summary = make_synthetic_dataset(out_dir, image_size=image_size, **kwargs)
    return {**summary, "generated": True}


def create_on_first_use(data):
    """Create the synthetic dataset of `data` (a DatasetConfig) where the registry reads it, unless a complete one is
    there already (any complete one is used as it is). Other datasets are left to `data.check_present`'s message."""
    if data.name != "synthetic" or is_complete(data.data_dir):
        return
    print(f"Creating the synthetic dataset in {data.data_dir} (first use)", flush=True)
    ensure_synthetic_dataset(data.data_dir, image_size=data.image_size)
