"""Annotate your own photos: MediaPipe BlazePose's 33 landmarks -> the 18 OpenPose/COCO joints, one person per image.

The original annotated Market-1501 and DeepFashion with OpenPose, whose weights cannot be downloaded
here. BlazePose takes its place: mediapipe 0.10.21 is the last release whose wheel bundles the pose
models (pose_detection.tflite, pose_landmark_full.tflite = model_complexity=1; 0 and 2 would
download), so it runs fully offline. It pins numpy<2 and protobuf<5, hence its own environment
(requirements-pose.txt, scripts/with_pose_env.sh). mediapipe is imported only when an Estimator is
built, so the mapping below and the annotation writing run in any environment.

Joint mapping (COCO-18 index <- BlazePose landmark; left/right are the person's own, in both):

    0 nose   <- 0 nose                 9 r_knee  <- 26 right_knee
    1 neck   <- midpoint of 11 and 12  10 r_ankle <- 28 right_ankle
    2 r_sho  <- 12 right_shoulder      11 l_hip   <- 23 left_hip
    3 r_elb  <- 14 right_elbow         12 l_knee  <- 25 left_knee
    4 r_wri  <- 16 right_wrist         13 l_ankle <- 27 left_ankle
    5 l_sho  <- 11 left_shoulder       14 r_eye   <- 5 right_eye (centre)
    6 l_elb  <- 13 left_elbow          15 l_eye   <- 2 left_eye (centre)
    7 l_wri  <- 15 left_wrist          16 r_ear   <- 8 right_ear
    8 r_hip  <- 24 right_hip           17 l_ear   <- 7 left_ear

Joints 14-17: in the real OpenPose files (Market, DeepFashion test sets) joint 14 lies on the side of
joint 2 (r_shoulder) in 99.5-99.8% of the rows with shoulders, eyes and ears, so 14/16 are the right
eye/ear, as in OpenPose's COCO output (the original's label list names them the other way round).
"""

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgan_tf.data.annotations import read_annotations, write_annotations
from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS, TORSO_JOINTS
from dgan_tf.images import ImageReadError, ImageSize, read_image, to_rgb_uint8
from dgan_tf.options import ROW_NAMES, check_choice
from dgan_tf.outputs import check_output_file, check_output_folder

BLAZEPOSE_NUM_LANDMARKS = 33
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12  # BlazePose indices of the two shoulders (the neck's ends)
LEFT_HIP, RIGHT_HIP = 23, 24
NECK = 1
# COCO-18 joint j <- BlazePose landmark COCO18_FROM_BLAZEPOSE[j]; the neck (None) is derived.
COCO18_FROM_BLAZEPOSE = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)

DEFAULT_MIN_VISIBILITY = 0.5  # mediapipe's own drawing threshold
DEFAULT_MIN_DETECTION_CONFIDENCE = 0.5  # mediapipe's default for its person detector
# Border added around the image before detection, as fractions of max(H, W), tried in this order until
# a person is found. BlazePose's detector needs a margin around the person: on the 68 real walk
# photos (128x64 person crops, Market's frame) it finds 12 people unpadded, 47 at 0.25, 66 at 0.5,
# 68 at 0.75 and 66 at 1.0; photos where the person is small need less, hence the fallbacks. 1.5 finds
# people cut by the frame's edges (in the walk photos cropped by 10% per side: 54 at 1.5, the most of any one).
DEFAULT_PADDINGS = (0.75, 0.5, 1.0, 1.5, 0.25, 0.0)
# When no padding finds a person, the second pass: a small image upscaled (bicubic) until its longer side is at
# least UPSCALE_TO pixels, then a contrast stretch (dark and low-contrast photos), each with SECOND_PASS_PADDINGS.
UPSCALE_TO = 256
SECOND_PASS_PADDINGS = (0.75, 1.0, 1.5, 0.5)
STRETCH_PERCENTILES = (1.0, 99.0)  # the luminance range stretched to 0-255
# BlazePose sometimes fits a person upside down (the detector's rotation off by 180 degrees): 12 of the 54 people
# found in the walk photos cropped tight (10% of each side off) were. People are taken to be upright: a fit whose
# torso, from the hips' midpoint to the shoulders', points down by more than this (sine of the angle below the
# horizontal) is rejected, and the next attempt tried. A person lying down passes; one in a handstand does not.
UPSIDE_DOWN_SINE = 0.5
PAD_VALUE = 128  # mid grey
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class PoseEnvironmentError(RuntimeError):
    """mediapipe is missing or unusable in this environment."""


def blazepose_to_coco18(landmarks_xyv, image_size, min_visibility=DEFAULT_MIN_VISIBILITY):
    """BlazePose's (33, 3) landmarks -> (18, 2) int32 COCO-18 keypoints in (row y, column x), -1 = not seen.

    landmarks_xyv: (33, 3) x, y normalised to the image (0 = left/top edge, 1 = right/bottom edge, as
    mediapipe reports them) and visibility in [0, 1]. image_size: (height, width) of the stored image.
    A joint is seen when its visibility >= min_visibility and it lies inside the image (0 <= x <= 1,
    0 <= y <= 1): OpenPose never reports a joint outside the frame and the annotation format cannot
    hold one, while clipping it to the border would place it where it is not. NaN counts as not seen.
    The neck is the midpoint of the two shoulders, only when both are seen.

    Rounding: the index of the pixel that contains the point, floor(x * W) (mediapipe's own
    `_normalized_to_pixel_coordinates` does the same), with x = 1 exactly (the far edge) kept in the
    last pixel. So a point at pixel centre i + 0.5 maps to i, and nothing lands outside 0..W-1.
    """
    landmarks = np.asarray(landmarks_xyv, dtype=np.float64)
    if landmarks.shape != (BLAZEPOSE_NUM_LANDMARKS, 3):
        raise ValueError(f"landmarks_xyv must have shape ({BLAZEPOSE_NUM_LANDMARKS}, 3) (x, y, visibility). "
                         f"Received: shape={landmarks.shape}")
    height, width = ImageSize.of(image_size)
    if not 0.0 <= float(min_visibility) <= 1.0:
        raise ValueError(f"min_visibility must lie in [0, 1]. Received: min_visibility={min_visibility!r}")

    x, y, visibility = landmarks[:, 0], landmarks[:, 1], landmarks[:, 2]
    with np.errstate(invalid="ignore"):  # NaN compares False: not seen
        seen = (visibility >= min_visibility) & (x >= 0) & (x <= 1) & (y >= 0) & (y <= 1)

    def to_pixel(xn, yn):
        row = min(math.floor(yn * height), height - 1)
        column = min(math.floor(xn * width), width - 1)
        return row, column

    keypoints = np.full((NUM_JOINTS, 2), MISSING, dtype=np.int32)  # (18, 2) yx
    for joint, landmark in enumerate(COCO18_FROM_BLAZEPOSE):
        if landmark is not None and seen[landmark]:
            keypoints[joint] = to_pixel(x[landmark], y[landmark])
    if seen[LEFT_SHOULDER] and seen[RIGHT_SHOULDER]:
        shoulders = [LEFT_SHOULDER, RIGHT_SHOULDER]
        keypoints[NECK] = to_pixel(x[shoulders].mean(), y[shoulders].mean())
    return keypoints


def upscaled(image, longer_side=UPSCALE_TO):
    """(h, w, 3) uint8 -> the image enlarged (bicubic) by the smallest integer factor that makes its longer side at
    least `longer_side`, and the factor (1: returned as it is)."""
    factor = max(1, math.ceil(longer_side / max(image.shape[:2])))
    if factor == 1:
        return image, 1
    from PIL import Image

    height, width = image.shape[:2]
    resized = Image.fromarray(image).resize((width * factor, height * factor), Image.Resampling.BICUBIC)
    return np.asarray(resized, dtype=np.uint8), factor


def contrast_stretched(image, percentiles=STRETCH_PERCENTILES):
    """(h, w, 3) uint8 -> the same with its luminance range (between the two percentiles) stretched to 0-255, the
    same gain and offset for the three channels; a flat image is returned as it is."""
    luminance = image.astype(np.float32) @ np.float32([0.299, 0.587, 0.114])
    low, high = np.percentile(luminance, percentiles)
    if high - low < 1.0:
        return image
    stretched = (image.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(np.round(stretched), 0, 255).astype(np.uint8)


def upside_down(landmarks_xyv, image_size):
    """True when the torso of BlazePose's (33, 3) landmarks (x, y normalised to an image of image_size) points down:
    the shoulders' midpoint below the hips' by more than UPSIDE_DOWN_SINE of their distance."""
    height, width = image_size
    points = np.asarray(landmarks_xyv, np.float64)[:, :2] * (width, height)  # (33, 2) x, y pixels
    torso = points[[LEFT_SHOULDER, RIGHT_SHOULDER]].mean(axis=0) - points[[LEFT_HIP, RIGHT_HIP]].mean(axis=0)
    length = float(np.hypot(*torso))
    return length > 0 and torso[1] / length > UPSIDE_DOWN_SINE


class Estimator:
    """MediaPipe BlazePose, `mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)`, one person per image.

    Each image is padded with a grey border (`paddings`, fractions of max(H, W), tried in order until a
    person is found) so that tight person crops leave the detector the margin it needs; landmarks are
    mapped back to the unpadded image. When none finds a person and `second_pass` is on, the image is tried
    again upscaled (when its longer side is under UPSCALE_TO pixels) and then contrast-stretched as well, with
    SECOND_PASS_PADDINGS. With `upright`, an upside-down fit counts as none (upside_down). Use as a context
    manager, or call close().
    """

    def __init__(self, min_detection_confidence=DEFAULT_MIN_DETECTION_CONFIDENCE, paddings=DEFAULT_PADDINGS,
                 pad_value=PAD_VALUE, second_pass=True, upright=True):
        paddings = tuple(float(p) for p in paddings)
        if not paddings or any(not 0.0 <= p <= 4.0 for p in paddings):
            raise ValueError(f"paddings must be a non-empty sequence of fractions in [0, 4]. "
                             f"Received: paddings={paddings!r}")
        if not 0.0 <= float(min_detection_confidence) <= 1.0:
            raise ValueError(f"min_detection_confidence must lie in [0, 1]. Received: {min_detection_confidence!r}")
        self.paddings = paddings
        self.pad_value = int(pad_value)
        self.second_pass = bool(second_pass)
        self.upright = bool(upright)
        self._pose = self._make_pose(float(min_detection_confidence))

    @staticmethod
    def _make_pose(min_detection_confidence):
        try:
            import mediapipe as mp

            solution = mp.solutions.pose
        except Exception as error:  # ImportError, or protobuf/numpy mismatches surfacing as other errors
            raise PoseEnvironmentError(
                f"mediapipe 0.10.21 is needed to estimate keypoints and could not be imported here "
                f"({type(error).__name__}: {error}). Run through the pose environment: "
                f"bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py ..."
            ) from None
        return solution.Pose(static_image_mode=True, model_complexity=1,
                             min_detection_confidence=min_detection_confidence)

    def attempts(self, image):
        """(image to detect in, its scale factor, paddings), in the order they are tried."""
        yield image, 1, self.paddings
        if self.second_pass:
            large, factor = upscaled(image)
            if factor > 1:
                yield large, factor, SECOND_PASS_PADDINGS
            yield contrast_stretched(large), factor, SECOND_PASS_PADDINGS

    def landmarks(self, image):
        """(33, 3) float64 landmarks (x, y normalised to `image`, visibility) of the one person, or None."""
        image = to_rgb_uint8(image)
        height, width = image.shape[:2]
        for candidate, factor, paddings in self.attempts(image):
            for padding in paddings:
                border = int(round(padding * max(candidate.shape[:2])))
                padded = np.pad(candidate, ((border, border), (border, border), (0, 0)),
                                constant_values=self.pad_value)
                result = self._pose.process(padded)
                if result.pose_landmarks is None:
                    continue
                landmarks = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark],
                                     dtype=np.float64)
                landmarks[:, 0] = (landmarks[:, 0] * padded.shape[1] - border) / (width * factor)
                landmarks[:, 1] = (landmarks[:, 1] * padded.shape[0] - border) / (height * factor)
                if self.upright and upside_down(landmarks, (height, width)):
                    continue
                return landmarks
        return None

    def keypoints_yx(self, image, min_visibility=DEFAULT_MIN_VISIBILITY):
        """(18, 2) int32 COCO-18 keypoints (row y, column x; -1 = not seen) of the one person, or None."""
        image = to_rgb_uint8(image)
        landmarks = self.landmarks(image)
        if landmarks is None:
            return None
        return blazepose_to_coco18(landmarks, image.shape[:2], min_visibility)

    def close(self):
        if getattr(self, "_pose", None) is not None:
            self._pose.close()
            self._pose = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def row_names(paths, names="file"):
    """The annotation row name of each image: its file name, or (names="relative") its path from the deepest folder
    that holds them all, with '/' separators (photos/a/0.jpg and photos/b/0.jpg -> a/0.jpg and b/0.jpg)."""
    check_choice("names", names, ROW_NAMES)
    paths = [Path(p) for p in paths]
    if names == "file" or not paths:
        return [p.name for p in paths]
    absolute = [Path(os.path.abspath(p)) for p in paths]
    base = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    return [p.relative_to(base).as_posix() for p in absolute]


def find_images(inputs, names="file"):
    """Image files, in order: files as given, folders' images (by suffix, not recursive) sorted by name.

    Raises ValueError (a bad argument) for a path that does not exist, when nothing is found, or when
    two files get the same row name (`names`, as row_names gives them; the annotation CSV keys rows by it).
    The same file given twice is kept once.
    """
    paths, problems = [], []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            found = sorted(p for p in item.iterdir()
                           if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
            if not found:
                problems.append(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in folder {item}")
            paths += found
        elif item.is_file():
            paths.append(item)
        else:
            problems.append(f"no such file or folder: {item}")
    if problems:
        raise ValueError("; ".join(problems))
    first, unique = {}, []
    for path, row in zip(paths, row_names(paths, names)):
        if row not in first:
            first[row] = path
            unique.append(path)
        elif first[row].resolve() != path.resolve():
            hint = ("; --names relative names rows by their paths (a/0.jpg, b/0.jpg)" if names == "file" else "")
            raise ValueError(f"two images share the name {row!r} ({first[row]} and {path}); the annotation CSV keys "
                             f"rows by name{hint}")
    return unique


def overlay_names(rows):
    """The file name of each row's skeleton drawing: NAME.png for NAME.jpg, or NAME.jpg.png for all of them when
    two rows differ by their suffix only (a.jpg, a.png)."""
    names = [str(Path(row).with_suffix(".png").as_posix()) for row in rows]
    return names if len(set(names)) == len(names) else [row if row.endswith(".png") else row + ".png" for row in rows]


@dataclass
class EstimationReport:
    """What annotate_images did: written rows, people not found, files left out, and the time it took."""

    output: Path
    names: list = field(default_factory=list)  # rows written, in order
    keypoints_yx: np.ndarray = None  # (N, 18, 2) int32, as written
    no_person: list = field(default_factory=list)  # (name, reason): rows of all -1
    skipped: list = field(default_factory=list)  # (path, reason): files left out
    seconds: float = 0.0  # reading, estimating and writing; not mediapipe's start-up

    @property
    def annotated(self):
        return len(self.names) - len(self.no_person)

    @property
    def with_torso(self):
        if self.keypoints_yx is None or not len(self.names):
            return 0
        return int((self.keypoints_yx[:, list(TORSO_JOINTS), 0] != MISSING).all(axis=1).sum())

    def summary(self):
        images = len(self.names) + len(self.skipped)
        per_image = f", {1000 * self.seconds / images:.0f} ms per image" if images else ""
        rows = f"{len(self.names)} row" + ("s" if len(self.names) != 1 else "")
        written = f"wrote {rows} to {self.output}" if self.names else "wrote nothing"
        return (f"{images} image{'s' if images != 1 else ''}: {self.annotated} annotated "
                f"({self.with_torso} with all four torso joints), "
                f"{len(self.no_person)} with no person (rows of -1), {len(self.skipped)} unreadable (left out); "
                f"{written} in {self.seconds:.1f} s{per_image}")


def _write_drawing(path, image, keypoints_yx):
    from dgan_tf.visualize import draw_pose, overlay_scale, write_image_atomic

    radius, thickness = overlay_scale(image.shape[:2])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_image_atomic(path, draw_pose(keypoints_yx, image.shape[:2], image, radius, thickness))


def _name_problem(name):
    if ":" in name or "\n" in name or "\r" in name or name != name.strip():
        return "file name contains ':', a line break or surrounding spaces, which the annotation CSV cannot hold"
    return None


def annotate_images(image_paths, output, min_visibility=DEFAULT_MIN_VISIBILITY, estimator=None, progress=True,
                    force=True, names="file", draw_dir=None, min_detection_confidence=DEFAULT_MIN_DETECTION_CONFIDENCE):
    """Estimate keypoints for every image, write the annotation CSV `output`, check it reads back; an EstimationReport.

    Rows are named by file name, or by path from the images' common folder (`names="relative"`, row_names). An
    image with no person (or no joint at or above `min_visibility`) gets a row of -1, as in the original's files
    (pair making drops it: its torso joints are missing); a file that cannot be read is left out. Both are listed
    in the report with the reason; the run goes on. Nothing is written when no row remains. `estimator`: an
    Estimator to reuse (else one is built with `min_detection_confidence` and closed). `draw_dir`: a folder that
    gets each read image with its skeleton drawn over it (overlay_names; the photo alone when no person).
    `output` (and `draw_dir`) are checked before any work (dgan_tf.outputs): not a folder, not one of the images,
    and, with force=False, not an existing file.
    """
    from tqdm.auto import tqdm

    if not 0.0 <= float(min_visibility) <= 1.0:
        raise ValueError(f"min_visibility must lie in [0, 1]. Received: min_visibility={min_visibility!r}")
    image_paths = [Path(p) for p in image_paths]
    row_of = dict(zip(image_paths, row_names(image_paths, names)))
    images = [("one of the input images", p) for p in image_paths]
    output = check_output_file(output, "--output", inputs=images, force=force)
    drawings = dict(zip(image_paths, overlay_names(list(row_of.values()))))
    if draw_dir is not None:
        check_output_folder(draw_dir, "--draw", files=list(drawings.values()), inputs=images)
    report = EstimationReport(output=output)
    rows = []
    own_estimator = estimator is None
    if own_estimator:
        estimator = Estimator(min_detection_confidence)
    start = time.perf_counter()  # per-image time: mediapipe's import and set-up (about 1 s) excluded
    try:
        for path in tqdm(image_paths, desc="keypoints", unit="image", disable=not progress):
            name = row_of[path]
            problem = _name_problem(name)
            if problem:
                report.skipped.append((str(path), problem))
                continue
            try:
                image = read_image(path)
            except ImageReadError as error:  # list it and go on
                report.skipped.append((str(path), f"cannot be read as an image: it {error.reason}"))
                continue
            keypoints = estimator.keypoints_yx(image, min_visibility)
            if keypoints is None:
                report.no_person.append((name, "no person found"))
                keypoints = np.full((NUM_JOINTS, 2), MISSING, dtype=np.int32)
            elif (keypoints == MISSING).all():
                report.no_person.append((name, f"a person, but no joint with visibility >= {min_visibility}"))
            if draw_dir is not None:
                _write_drawing(Path(draw_dir) / drawings[path], image, keypoints)
            report.names.append(name)
            rows.append(keypoints)
    finally:
        if own_estimator:
            estimator.close()
    if rows:
        report.keypoints_yx = np.stack(rows).astype(np.int32)  # (N, 18, 2)
        write_annotations(output, report.names, report.keypoints_yx)
        table = read_annotations(output)
        if list(table.names) != report.names or not np.array_equal(table.keypoints_yx, report.keypoints_yx):
            raise RuntimeError(f"{output} does not read back as written")  # a bug, never a user error
    report.seconds = time.perf_counter() - start
    return report
