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
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dgan_tf.data.annotations import read_annotations, write_annotations
from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS, TORSO_JOINTS
from dgan_tf.images import ImageReadError, ImageSize, read_image, to_rgb_uint8
from dgan_tf.outputs import check_output_file

BLAZEPOSE_NUM_LANDMARKS = 33
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12  # BlazePose indices of the two shoulders (the neck's ends)
NECK = 1
# COCO-18 joint j <- BlazePose landmark COCO18_FROM_BLAZEPOSE[j]; the neck (None) is derived.
COCO18_FROM_BLAZEPOSE = (0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7)

DEFAULT_MIN_VISIBILITY = 0.5  # mediapipe's own drawing threshold
# Border added around the image before detection, as fractions of max(H, W), tried in this order until
# a person is found. BlazePose's detector needs a margin around the person: on the 68 real walk
# photos (128x64 person crops, Market's frame) it finds 12 people unpadded, 47 at 0.25, 66 at 0.5,
# 68 at 0.75 and 66 at 1.0; photos where the person is small need less, hence the fallbacks.
DEFAULT_PADDINGS = (0.75, 0.5, 1.0, 0.25, 0.0)
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


class Estimator:
    """MediaPipe BlazePose, `mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1)`, one person per image.

    Each image is padded with a grey border (`paddings`, fractions of max(H, W), tried in order until a
    person is found) so that tight person crops leave the detector the margin it needs; landmarks are
    mapped back to the unpadded image. Use as a context manager, or call close().
    """

    def __init__(self, min_detection_confidence=0.5, paddings=DEFAULT_PADDINGS, pad_value=PAD_VALUE):
        paddings = tuple(float(p) for p in paddings)
        if not paddings or any(not 0.0 <= p <= 4.0 for p in paddings):
            raise ValueError(f"paddings must be a non-empty sequence of fractions in [0, 4]. "
                             f"Received: paddings={paddings!r}")
        if not 0.0 <= float(min_detection_confidence) <= 1.0:
            raise ValueError(f"min_detection_confidence must lie in [0, 1]. Received: {min_detection_confidence!r}")
        self.paddings = paddings
        self.pad_value = int(pad_value)
        try:
            import mediapipe as mp

            solution = mp.solutions.pose
        except Exception as error:  # ImportError, or protobuf/numpy mismatches surfacing as other errors
            raise PoseEnvironmentError(
                f"mediapipe 0.10.21 is needed to estimate keypoints and could not be imported here "
                f"({type(error).__name__}: {error}). Run through the pose environment: "
                f"bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py ..."
            ) from None
        self._pose = solution.Pose(static_image_mode=True, model_complexity=1,
                                   min_detection_confidence=float(min_detection_confidence))

    def landmarks(self, image):
        """(33, 3) float64 landmarks (x, y normalised to `image`, visibility) of the one person, or None."""
        image = to_rgb_uint8(image)
        height, width = image.shape[:2]
        for padding in self.paddings:
            border = int(round(padding * max(height, width)))
            padded = np.pad(image, ((border, border), (border, border), (0, 0)), constant_values=self.pad_value)
            result = self._pose.process(padded)
            if result.pose_landmarks is None:
                continue
            landmarks = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float64)
            landmarks[:, 0] = (landmarks[:, 0] * padded.shape[1] - border) / width
            landmarks[:, 1] = (landmarks[:, 1] * padded.shape[0] - border) / height
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


def find_images(inputs):
    """Image files, in order: files as given, folders' images (by suffix, not recursive) sorted by name.

    Raises ValueError (a bad argument) for a path that does not exist, when nothing is found, or when
    two files share a name (the annotation CSV keys rows by file name).
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
    first = {}
    for path in paths:
        if path.name in first and first[path.name].resolve() != path.resolve():
            raise ValueError(f"two images share the name {path.name!r} ({first[path.name]} and {path}); "
                             f"the annotation CSV keys rows by file name")
        first.setdefault(path.name, path)
    unique, seen = [], set()
    for path in paths:  # the same file given twice is annotated once
        if path.name not in seen:
            seen.add(path.name)
            unique.append(path)
    return unique


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


def _name_problem(name):
    if ":" in name or "\n" in name or "\r" in name or name != name.strip():
        return "file name contains ':', a line break or surrounding spaces, which the annotation CSV cannot hold"
    return None


def annotate_images(image_paths, output, min_visibility=DEFAULT_MIN_VISIBILITY, estimator=None, progress=True,
                    force=True):
    """Estimate keypoints for every image, write the annotation CSV `output`, check it reads back; an EstimationReport.

    Rows are named by file name. An image with no person (or no joint at or above `min_visibility`) gets
    a row of -1, as in the original's files (pair making drops it: its torso joints are missing); a file
    that cannot be read is left out. Both are listed in the report with the reason; the run goes on.
    Nothing is written when no row remains. `estimator`: an Estimator to reuse (else one is built and closed).
    `output` is checked before any work (dgan_tf.outputs.check_output_file): not a folder, not one of the images,
    and, with force=False, not an existing file.
    """
    from tqdm.auto import tqdm

    if not 0.0 <= float(min_visibility) <= 1.0:
        raise ValueError(f"min_visibility must lie in [0, 1]. Received: min_visibility={min_visibility!r}")
    image_paths = list(image_paths)
    output = check_output_file(output, "--output", inputs=[("one of the input images", p) for p in image_paths],
                               force=force)
    report = EstimationReport(output=output)
    rows = []
    own_estimator = estimator is None
    if own_estimator:
        estimator = Estimator()
    start = time.perf_counter()  # per-image time: mediapipe's import and set-up (about 1 s) excluded
    try:
        for path in tqdm(image_paths, desc="keypoints", unit="image", disable=not progress):
            path = Path(path)
            problem = _name_problem(path.name)
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
                report.no_person.append((path.name, "no person found"))
                keypoints = np.full((NUM_JOINTS, 2), MISSING, dtype=np.int32)
            elif (keypoints == MISSING).all():
                report.no_person.append((path.name, f"a person, but no joint with visibility >= {min_visibility}"))
            report.names.append(path.name)
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
