"""One command from a photo to a result (the original's demo.py): targets of every kind, the person framed as the
model saw people in training, and a strip per target: source | target photo or skeleton | generated.

Targets: a photo, a folder of photos (natural order), a video's frames (GIF here; other formats through an imageio
plugin), an annotation CSV (all its rows but the source photo's, or those `rows` names) or one row of it
(`annotations.csv:NAME`), an OpenPose JSON file or a folder of them. Photos and frames get their pose from the
keypoint estimator, in its own environment (dgan_tf.evaluation.pckh.estimate_with_pose_environment).

Framing: the model was trained on person crops (Market-1501's detector boxes), so each photo is cropped to its
person: the box of the estimated keypoints plus BOX_MARGINS, widened to the model's aspect, moved inside the photo
where it fits and clipped to it, then resized into the model's frame (dgan_tf.inference.transfer.Letterbox: scale
keeping the aspect, edge padding). A photo of the model's size is a person crop already and stays as it is. A pose
without a photo (a CSV row, OpenPose) is framed the same way within its frame (`pose_frame`).
"""

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgan_tf.geometry.keypoints import MISSING
from dgan_tf.images import ImageSize, read_image, to_rgb_uint8

DEFAULT_RUN = "runs/synthetic-dsc"  # the README's main job
GIF_NAME = "demo.gif"
GIF_MIN_HEIGHT = 256  # the GIF's strips are enlarged (nearest neighbour) to at least this height
# Above and below the keypoints' box, as fractions of its height: Market-1501's median framing (test annotations,
# 6,323 rows with nose, ankles and torso: 0.093 above the highest joint, 0.117 below the lowest; DeepFashion's
# 0.104 and 0.132). The box is then widened to the model's aspect, and at least SIDE_MARGIN of the keypoints' width.
BOX_MARGINS = (0.10, 0.12)
SIDE_MARGIN = 0.10
VIDEO_SUFFIXES = (".gif", ".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# What imageio needs to read videos other than GIF: (module, pip package)
VIDEO_PLUGINS = (("imageio_ffmpeg", "imageio-ffmpeg"), ("av", "av"))


class VideoError(ValueError):
    """A video that cannot be read here; the message names the file and what to install."""


@dataclass
class Target:
    """One target: its pose in its frame (None until estimated), and the photo or video frame it came from."""

    label: str  # names the strip
    origin: str  # names it in messages
    frame_size: ImageSize
    keypoints_yx: np.ndarray = None  # (18, 2) float32, (y, x) pixels of its frame, -1 missing
    image: np.ndarray = None  # (h, w, 3) uint8, a photo or a frame
    sequence: int = 0  # the target argument it came from: missing joints are filled within one sequence


# ---------------------------------------------------------------------------------------------------
# Reading targets


def read_video(path, every=1):
    """The frames of a video, (h, w, 3) uint8 each, every `every`-th one; VideoError when it cannot be read here."""
    import imageio.v3 as iio

    path = Path(path)
    if path.suffix.lower() != ".gif" and not any(importlib.util.find_spec(m) for m, _ in VIDEO_PLUGINS):
        raise VideoError(f"cannot read the video {path}: reading {path.suffix} files needs a video plugin for imageio "
                         f"and none is installed here; install one with: pip install imageio-ffmpeg (or: pip "
                         "install av). GIF videos, folders of frames and photos need none")
    try:
        frames = [to_rgb_uint8(frame, path) for index, frame in enumerate(iio.imiter(path)) if index % every == 0]
    except (OSError, ValueError, RuntimeError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise VideoError(f"cannot read the video {path}: {reason}") from None
    if not frames:
        raise VideoError(f"the video {path} has no frames")
    return frames


def _photos_in(folder):
    from dgan_tf.inference.keypoint_estimation import IMAGE_SUFFIXES
    from dgan_tf.inference.poses import natural_key

    return sorted((p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")), key=natural_key)


def _same_file(a, b):
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def read_targets(specs, source_photo, pose_frame, rows=None, exclude=(), confidence=None, every=1):
    """Every target argument -> Targets in order; photos and frames read, poses read and checked inside their frame.

    source_photo: its path (left out of a folder of photos unless `rows` names it exactly); pose_frame: the frame
    (H, W) of poses without a photo; exclude: row names a whole CSV leaves out (the source's) unless `rows` names
    them; rows: glob patterns narrowing a CSV, a folder of photos or of OpenPose files.
    """
    from dgan_tf.inference import poses as pose_io
    from dgan_tf.inference.keypoint_estimation import IMAGE_SUFFIXES

    confidence = pose_io.DEFAULT_CONFIDENCE if confidence is None else confidence
    pose_frame = ImageSize.of(pose_frame, "pose_frame")
    targets = []

    def photo(path, index, label=None):
        image = read_image(path)
        targets.append(Target(label or path.stem, str(path), ImageSize.of(image.shape[:2]), image=image,
                              sequence=index))

    for index, spec in enumerate(specs):
        path = Path(spec)
        photos = _photos_in(path) if path.is_dir() else []
        if photos:
            source = {p.name for p in photos if _same_file(p, source_photo)}
            kept = set(pose_io.select_names([p.name for p in photos], rows, source, f"folder {path}"))
            for item in photos:
                if item.name in kept:
                    photo(item, index)
        elif path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            for number, frame in enumerate(read_video(path, every)):
                targets.append(Target(f"{path.stem}_{number * every:05d}", f"{path} frame {number * every}",
                                      ImageSize.of(frame.shape[:2]), image=frame, sequence=index))
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            photo(path, index)
        elif path.is_dir() and not any(path.glob("*.json")):
            raise pose_io.PoseError(f"folder {path} holds no photos ({', '.join(IMAGE_SUFFIXES)}) and no OpenPose "
                                    "*.json files")
        else:
            for pose in pose_io.read_poses(spec, confidence, rows, exclude):
                pose_io.require_inside(pose, pose_frame, "target pose", "the target frame",
                                       "poses without a photo are in the source photo's pixels unless a target "
                                       "frame (--target-frame HxW) says otherwise")
                targets.append(Target(pose.label, pose.origin, pose_frame, keypoints_yx=pose.keypoints_yx,
                                      sequence=index))
    return targets


# ---------------------------------------------------------------------------------------------------
# Poses of photos, missing joints, framing


def estimate_poses(images, min_detection_confidence=None):
    """(N, 18, 2) float32 keypoints of uint8 images by the keypoint estimator in its environment; -1 rows where no
    person was found. PoseEstimationError when the estimator cannot run."""
    import tempfile

    from dgan_tf.evaluation.pckh import estimate_with_pose_environment

    if not len(images):
        return np.zeros((0, 18, 2), np.float32)
    with tempfile.TemporaryDirectory(prefix="dgan-demo-") as work:
        found = estimate_with_pose_environment(images, work, min_detection_confidence=min_detection_confidence)
    return found.astype(np.float32)


def no_person(keypoints_yx):
    return bool(np.all(np.asarray(keypoints_yx) == MISSING))


def fill_missing(targets):
    """Each target's missing joints from the target before it in the same sequence (the original demo's way)."""
    from dgan_tf.inference.poses import Pose, fill_missing_from_previous

    filled, previous = [], {}
    for target in targets:
        pose = Pose(target.keypoints_yx, target.label, target.origin)
        if target.sequence in previous:
            pose = fill_missing_from_previous([previous[target.sequence], pose])[1]
        previous[target.sequence] = pose
        target.keypoints_yx = pose.keypoints_yx
    return targets


def complete_targets(targets, fill=True, note=print):
    """[(index, target)] of the targets with a person and both shoulders and hips, after each one's missing joints
    were taken from the previous one of its sequence (fill); each target left out is named through `note`."""
    from dgan_tf.inference.poses import Pose

    found = []
    for index, target in enumerate(targets):
        if no_person(target.keypoints_yx):
            note(f"skipped {target.origin}: no person found")
        else:
            found.append((index, target))
    if fill:
        fill_missing([target for _, target in found])
    complete = []
    for index, target in found:
        missing = Pose(target.keypoints_yx, target.label, target.origin).missing_torso_joints()
        if missing:
            note(f"skipped {target.origin}: no {', '.join(missing)} (the deformable skips need both shoulders and "
                 "hips)")
        else:
            complete.append((index, target))
    return complete


def person_region(keypoints_yx, frame_size, model_size, margins=BOX_MARGINS, side_margin=SIDE_MARGIN):
    """(top, left, height, width) of the person's crop in a frame: the keypoints' box with `margins` above and below
    (fractions of its height), widened to the model's aspect, moved inside the frame where it fits, then clipped.
    The whole frame when fewer than two joints are present."""
    frame_height, frame_width = ImageSize.of(frame_size, "frame_size")
    model_height, model_width = ImageSize.of(model_size, "model_size")
    keypoints = np.asarray(keypoints_yx, np.float64)
    present = keypoints[np.all(keypoints != MISSING, axis=-1)]
    if len(present) < 2:
        return 0, 0, frame_height, frame_width
    (y0, x0), (y1, x1) = present.min(axis=0), present.max(axis=0) + 1  # pixel extents
    top, bottom = y0 - margins[0] * (y1 - y0), y1 + margins[1] * (y1 - y0)
    left, right = x0 - side_margin * (x1 - x0), x1 + side_margin * (x1 - x0)
    aspect = model_height / model_width
    grow_height = max(0.0, (right - left) * aspect - (bottom - top)) / 2
    grow_width = max(0.0, (bottom - top) / aspect - (right - left)) / 2
    top, bottom, left, right = top - grow_height, bottom + grow_height, left - grow_width, right + grow_width

    def inside(low, high, size):
        if high - low <= size:  # fits: move it in
            shift = max(0.0, -low) - max(0.0, high - size)
            low, high = low + shift, high + shift
        low, high = max(0, math.floor(low + 1e-9)), min(size, math.ceil(high - 1e-9))
        return low, high - low

    (top, height), (left, width) = inside(top, bottom, frame_height), inside(left, right, frame_width)
    return top, left, height, width


def into_model_frame(keypoints_yx, frame_size, model_size, image=None, crop=True):
    """A pose (and its photo) in its frame -> (keypoints (18, 2) float32, image (H, W, 3) uint8 or None) in the
    model's frame: the person's region (person_region) through a Letterbox. The whole frame with crop=False, or
    when the frame is the model's size: a person crop already, as the training images."""
    from dgan_tf.inference.transfer import Letterbox

    frame_size = ImageSize.of(frame_size, "frame_size")
    whole = not crop or frame_size == ImageSize.of(model_size, "model_size")
    top, left, height, width = (0, 0, *frame_size) if whole else person_region(keypoints_yx, frame_size, model_size)
    letterbox = Letterbox.fit((height, width), model_size)
    keypoints = np.asarray(keypoints_yx, np.float32)
    missing = np.any(keypoints == MISSING, axis=-1, keepdims=True)
    in_region = np.where(missing, np.float32(MISSING), keypoints - np.float32([top, left]))
    framed = None if image is None else letterbox.image(image[top:top + height, left:left + width])
    return letterbox.keypoints(in_region), framed


# ---------------------------------------------------------------------------------------------------
# Strips


def make_strip(source_image, target_keypoints, generated, target_image=None):
    """source | target photo with its skeleton (or the skeleton alone) | generated, each (H, W, 3) uint8."""
    from dgan_tf.visualize import draw_pose, strip

    size = source_image.shape[:2]
    return strip([source_image, draw_pose(target_keypoints, size, target_image), generated])


def write_strips(output_dir, strips, names, gif=False, fps=8):
    """Each strip as output_dir/NAME (PNG), and with gif=True output_dir/demo.gif: the strips enlarged to at least
    GIF_MIN_HEIGHT pixels (nearest neighbour). Atomic writes; returns the paths."""
    from dgan_tf.visualize import upscaled_nearest, write_gif_atomic, write_image_atomic

    output_dir = Path(output_dir)
    paths = [write_image_atomic(output_dir / name, image) for name, image in zip(names, strips)]
    if gif:
        paths.append(write_gif_atomic(output_dir / GIF_NAME, [upscaled_nearest(s, GIF_MIN_HEIGHT) for s in strips],
                                      fps))
    return paths
