"""Poses for pose transfer: a row of an annotation CSV, an OpenPose JSON file, or a sequence of either.

A POSE argument is one of
  annotations.csv:NAME   the row NAME of an annotation CSV (the original's format, pose-gan
                         compute_coordinates.py:216, 224 at 8693ec4)
  annotations.csv        every row of it, in file order (a sequence)
  frame.json             an OpenPose output file: `pose_keypoints_2d` in COCO-18 (54 values) or BODY_25 (75)
  FOLDER                 every *.json in it, in natural order (OpenPose's per-frame output of a video)

A sequence (a whole CSV, a folder) can be narrowed by name (`rows`: glob patterns, e.g. `walk_*`), and names to
leave out (`exclude`: the source photo's row, which a CSV made from a folder of photos holds too) are left out
unless a pattern is that exact name.

Every pose becomes (18, 2) float32 keypoints in (y, x) pixels, -1 for a missing joint, in the 18-joint layout of
dgan_tf.geometry.keypoints. Errors name the file (and the row or person) and what was expected.
"""

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgan_tf.geometry.keypoints import JOINT_NAMES, MISSING, NUM_JOINTS, TORSO_JOINTS

DEFAULT_CONFIDENCE = 0.1  # OpenPose joints below this confidence count as missing
COCO18_VALUES = NUM_JOINTS * 3
BODY25_VALUES = 25 * 3
# BODY_25 index of each of our 18 joints: BODY_25 adds MidHip (8) and six foot points (19-24), and shifts the
# hips, legs, eyes and ears by one. OpenPose COCO-18 is our layout as it is (14/15 eyes, 16/17 ears).
BODY25_TO_COCO18 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18)


class PoseError(ValueError):
    """A pose file that cannot be used; the message names the file."""


@dataclass(frozen=True)
class Pose:
    """One pose: keypoints (18, 2) float32 (y, x), -1 missing; `label` names output files, `origin` errors."""

    keypoints_yx: np.ndarray
    label: str
    origin: str

    def missing_torso_joints(self):
        """Names of the four torso joints (shoulders, hips) that are missing."""
        return [JOINT_NAMES[j] for j in TORSO_JOINTS if np.any(self.keypoints_yx[j] == MISSING)]

    def with_keypoints(self, keypoints_yx):
        return Pose(np.asarray(keypoints_yx, np.float32), self.label, self.origin)


def require_torso(pose, role="pose"):
    """The pose, or a PoseError naming its file and the missing torso joints (the part geometry needs all four)."""
    missing = pose.missing_torso_joints()
    if missing:
        raise PoseError(f"{role} {pose.origin} has no {', '.join(missing)}: the deformable skips need all four "
                        "torso joints (both shoulders and both hips)")
    return pose


def require_inside(pose, frame, role="pose", frame_name="the frame", hint=""):
    """The pose, or a PoseError naming its file, the first joint outside `frame` (H, W) and the frame: coordinates
    are pixels of that frame, 0 <= y < H and 0 <= x < W, or -1 for a missing joint (NaN and Inf are outside)."""
    height, width = frame
    keypoints = np.asarray(pose.keypoints_yx, np.float64)  # (18, 2)
    y, x = keypoints[:, 0], keypoints[:, 1]
    with np.errstate(invalid="ignore"):
        inside = (y >= 0) & (y < height) & (x >= 0) & (x < width)
    outside = np.nonzero(~inside & np.any(keypoints != MISSING, axis=-1))[0]
    if len(outside):
        joint = outside[0]
        more = f" (and {len(outside) - 1} more joint(s))" if len(outside) > 1 else ""
        raise PoseError(f"{role} {pose.origin}: joint {JOINT_NAMES[joint]} at (y={y[joint]:.6g}, x={x[joint]:.6g}) "
                        f"lies outside {frame_name}, {height}x{width} (0 <= y < {height}, 0 <= x < {width}){more}"
                        + (f"; {hint}" if hint else ""))
    return pose


def fill_missing_from_previous(poses):
    """Each pose's missing joints taken from the pose before it, as the original's demo did for a video."""
    filled, previous = [], None
    for pose in poses:
        keypoints = pose.keypoints_yx.copy()
        if previous is not None:
            missing = np.any(keypoints == MISSING, axis=-1)  # (18,)
            keypoints[missing] = previous[missing]
        filled.append(pose.with_keypoints(keypoints))
        previous = keypoints
    return filled


# ---------------------------------------------------------------------------------------------------
# OpenPose JSON


def openpose_keypoints(flat, confidence=DEFAULT_CONFIDENCE, where="pose_keypoints_2d"):
    """A flat [x, y, c, ...] list in COCO-18 or BODY_25 order -> ((18, 2) float32 (y, x), (18,) confidences).

    A joint with confidence below `confidence` (OpenPose writes 0, 0, 0 for an undetected one) is missing.
    """
    values = np.asarray(flat, dtype=np.float64)
    if values.ndim != 1 or values.size not in (COCO18_VALUES, BODY25_VALUES):
        raise PoseError(f"{where} has {values.size} values; expected {COCO18_VALUES} (COCO-18) or {BODY25_VALUES} "
                        "(BODY_25): x, y, confidence per joint")
    if not np.all(np.isfinite(values)):
        raise PoseError(f"{where} holds NaN or Inf")
    triples = values.reshape(-1, 3)
    if len(triples) == 25:
        triples = triples[list(BODY25_TO_COCO18)]
    x, y, scores = triples[:, 0], triples[:, 1], triples[:, 2]
    visible = (scores >= confidence) & (scores > 0) & (x >= 0) & (y >= 0)
    keypoints = np.where(visible[:, None], np.stack([y, x], axis=-1), MISSING).astype(np.float32)
    return keypoints, np.where(visible, scores, 0.0)


def read_openpose_json(path, confidence=DEFAULT_CONFIDENCE):
    """The most confident person (largest sum of joint confidences) of an OpenPose JSON file, as a Pose."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PoseError(f"pose file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise PoseError(f"{path} is not a readable JSON file ({error})") from None
    expected = 'an OpenPose keypoint file: {"people": [{"pose_keypoints_2d": [x, y, confidence, ...]}]}'
    people = document.get("people") if isinstance(document, dict) else None
    if not isinstance(people, list):
        raise PoseError(f"{path} is not {expected}")
    if not people:
        raise PoseError(f"{path}: OpenPose found no person in this frame (\"people\" is empty)")
    best = None
    for index, person in enumerate(people):
        # "pose_keypoints" is the key of OpenPose before 1.2.
        flat = person.get("pose_keypoints_2d", person.get("pose_keypoints")) if isinstance(person, dict) else None
        if not isinstance(flat, list):
            raise PoseError(f"{path}, person {index}: no pose_keypoints_2d list; expected {expected}")
        try:
            keypoints, scores = openpose_keypoints(flat, confidence, where=f"{path}, person {index}: pose_keypoints_2d")
        except PoseError:
            raise
        except (TypeError, ValueError) as error:
            raise PoseError(f"{path}, person {index}: pose_keypoints_2d must hold numbers ({error})") from None
        if best is None or scores.sum() > best[0]:
            best = (scores.sum(), index, keypoints)
    _, index, keypoints = best
    present = keypoints[np.all(keypoints != MISSING, axis=-1)]
    if len(present) >= 3 and present.max() <= 1.0:
        raise PoseError(f"{path}: the coordinates look normalised to [0, 1]; run OpenPose with --keypoint_scale 0 "
                        "(pixels)")
    origin = str(path) if len(people) == 1 else f"{path} (person {index} of {len(people)})"
    return Pose(keypoints, path.stem, origin)


# ---------------------------------------------------------------------------------------------------
# Annotation CSVs


def select_names(names, rows=None, exclude=(), where="the sequence"):
    """The names of a sequence that are kept, in order: those matching one of the glob patterns `rows` (all when
    None), less those in `exclude` unless a pattern is that exact name. PoseError when none is left."""
    from fnmatch import fnmatchcase

    named = set(rows or ())
    kept = [n for n in names if (rows is None or any(fnmatchcase(n, pattern) for pattern in rows))
            and (n not in exclude or n in named)]
    if not kept:
        shown = ", ".join(list(names)[:5]) + (", ..." if len(names) > 5 else "")
        left_out = f"; {', '.join(sorted(set(exclude) & set(names)))} left out (the source's)" if \
            set(exclude) & set(names) else ""
        raise PoseError(f"no name of {where} matches --rows {' '.join(rows)} ({len(names)} names: {shown}{left_out})"
                        if rows is not None else f"{where} holds no pose but the source's{left_out}")
    return kept


def read_csv_poses(path, name=None, rows=None, exclude=()):
    """The row `name` of an annotation CSV as a one-pose list, or its rows (name None) in file order, narrowed by
    `rows` and `exclude` as select_names does."""
    from dgan_tf.data.annotations import read_annotations

    path = Path(path)
    table = read_annotations(path)  # AnnotationError (a ValueError) naming file and line
    names = select_names(table.names, rows, exclude, str(path)) if name is None else (name,)
    if name is not None and name not in table:
        shown = ", ".join(table.names[:5]) + (", ..." if len(table) > 5 else "")
        raise PoseError(f"{path} has no row named {name!r} ({len(table)} rows: {shown})")
    return [Pose(table.get(n).astype(np.float32), Path(n).stem, f"{path}:{n}") for n in names]


# ---------------------------------------------------------------------------------------------------
# POSE arguments


def natural_key(path):
    """Sort key of file names with numbers in natural order (frame_2 before frame_10)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def read_pose_folder(path, confidence=DEFAULT_CONFIDENCE, rows=None):
    files = sorted(Path(path).glob("*.json"), key=natural_key)
    if not files:
        raise PoseError(f"pose folder {path} holds no *.json (OpenPose output) files")
    kept = set(select_names([f.name for f in files], rows, where=f"pose folder {path}"))
    return [read_openpose_json(f, confidence) for f in files if f.name in kept]


def read_poses(spec, confidence=DEFAULT_CONFIDENCE, rows=None, exclude=()):
    """One POSE argument -> a list of Poses (one, or a sequence); see the module docstring for the forms. `rows`
    and `exclude` narrow a sequence (a whole CSV's row names, a folder's file names) as select_names does."""
    if not math.isfinite(confidence) or not 0 <= confidence <= 1:
        raise ValueError(f"confidence must be in [0, 1]. Received: confidence={confidence!r}")
    text = str(spec)
    path = Path(text)
    if path.is_dir():
        return read_pose_folder(path, confidence, rows)
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".json":
            return [read_openpose_json(path, confidence)]
        if suffix == ".csv":
            return read_csv_poses(path, rows=rows, exclude=exclude)
        raise PoseError(f"{path}: unknown pose file type {path.suffix!r}; expected an OpenPose .json, an annotation "
                        ".csv (all rows) or annotations.csv:NAME (one row)")
    if ":" in text:
        file_part, name = text.rsplit(":", 1)
        if Path(file_part).is_file():
            if not name:
                raise PoseError(f"{text}: empty row name after ':' (expected annotations.csv:NAME)")
            return read_csv_poses(file_part, name)
        raise PoseError(f"pose file not found: {file_part} (from {text!r})")
    raise PoseError(f"pose file not found: {text}")


def row_of(spec):
    """NAME of a POSE argument `annotations.csv:NAME`, else None."""
    text = str(spec)
    if ":" in text and not Path(text).exists() and Path(text.rsplit(":", 1)[0]).is_file():
        return text.rsplit(":", 1)[1]
    return None


def read_pose(spec, confidence=DEFAULT_CONFIDENCE):
    """A POSE argument that must name exactly one pose (the source's)."""
    poses = read_poses(spec, confidence)
    if len(poses) != 1:
        raise PoseError(f"{spec} holds {len(poses)} poses; the source needs one: use {spec}:NAME for a CSV row")
    return poses[0]
