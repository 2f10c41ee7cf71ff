"""PCKh of generated images, as PATN (Zhu et al., CVPR 2019) and the papers after it compute it; numpy only.

The protocol (tengteng95/Pose-Transfer, tool/calPCKH_market.py and calPCKH_fashion.py, identical but for
the file paths): the keypoints of each generated image (`predicted`, estimated by a pose estimator) are
compared with the annotated keypoints of its target image (`target`), both in the same pixel frame.

- Head size, per image, from the TARGET only: the bounding box of its present head points, nose 0,
  neck 1, eyes 14, 15 and ears 16, 17 (PARTS_SEL = [0, 1, 14, 15, 16, 17]); width = max x - min x,
  height = max y - min y. A target with fewer than two of them present is skipped: its joints count
  neither as correct nor in the total.
- A joint is correct when both its predicted and target points are present and, on EACH axis
  separately, |px - tx| < alpha * width and |py - ty| < alpha * height (a box, strict <), alpha = 0.5.
  So a head box of zero width (e.g. only nose and neck, one above the other) makes no joint of that
  image correct, while its joints still count: the reference behaves so and we keep it.
- Every present target joint (all 18, the head points included) counts in the total; a missing
  prediction of a present target joint is a miss. Missing target joints are not counted.
- The score is pooled over all joints of all images: sum(correct) / sum(present target joints),
  not a mean of per-image scores.

GFLA (RenYurui/Global-Flow-Local-Attention) ships no PCKh script; it reports PATN's numbers. The papers
estimated keypoints with OpenPose; numbers from another estimator (BlazePose here) are comparable
with each other, not with the papers'.
"""

import numpy as np

from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS

PCKH_HEAD_JOINTS = (0, 1, 14, 15, 16, 17)  # nose, neck, eyes, ears: the head box
DEFAULT_THRESHOLD = 0.5


def _as_keypoints(value, name):
    keypoints = np.asarray(value)
    if keypoints.shape[-2:] != (NUM_JOINTS, 2) or keypoints.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape (18, 2) or (N, 18, 2) in (row y, column x). "
                         f"Received: shape={keypoints.shape}")
    if not np.issubdtype(keypoints.dtype, np.number):
        raise ValueError(f"{name} must hold numbers. Received: dtype={keypoints.dtype}")
    return keypoints.reshape(-1, NUM_JOINTS, 2).astype(np.float64)


def head_size(target_yx):
    """(N, 2) head-box (height, width) of each target, NaN where fewer than two head points are present."""
    target = _as_keypoints(target_yx, "target_yx")
    head = target[:, PCKH_HEAD_JOINTS]  # (N, 6, 2)
    present = (head != MISSING).all(axis=-1)  # (N, 6); the reference skips a point with either coordinate -1
    points = np.where(present[..., None], head, np.nan)
    usable = present.sum(axis=1) >= 2
    size = np.full((len(target), 2), np.nan)
    if usable.any():
        size[usable] = np.nanmax(points[usable], axis=1) - np.nanmin(points[usable], axis=1)
    return size


def pckh_counts(predicted_yx, target_yx, threshold=DEFAULT_THRESHOLD):
    """(correct joints, counted target joints, images used) of PATN's PCKh; see the module docstring."""
    predicted = _as_keypoints(predicted_yx, "predicted_yx")
    target = _as_keypoints(target_yx, "target_yx")
    if predicted.shape != target.shape:
        raise ValueError(f"predicted_yx and target_yx must have the same shape. "
                         f"Received: {predicted.shape} and {target.shape}")
    threshold = float(threshold)
    if not threshold >= 0:
        raise ValueError(f"threshold must be a number >= 0. Received: threshold={threshold!r}")
    size = head_size(target)  # (N, 2) (height, width)
    used = ~np.isnan(size[:, 0])  # (N,)
    both = (predicted != MISSING).all(axis=-1) & (target != MISSING).all(axis=-1)  # (N, 18)
    with np.errstate(invalid="ignore"):  # NaN head sizes of skipped images compare False
        close = (np.abs(predicted - target) < threshold * size[:, None, :]).all(axis=-1)  # (N, 18), both axes
    correct = both & close & used[:, None]
    counted = (target[..., 0] != MISSING) & used[:, None]  # the reference counts y != -1
    return int(correct.sum()), int(counted.sum()), int(used.sum())


def pckh(predicted_yx, target_yx, threshold=DEFAULT_THRESHOLD):
    """PCKh@threshold (PATN's protocol): correct joints / present target joints, pooled over all images.

    predicted_yx, target_yx: (18, 2) or (N, 18, 2) keypoints in (row y, column x), -1 = missing, in the
    same pixel frame. Raises ValueError when no target has two head points (nothing to normalise by).
    """
    correct, counted, _ = pckh_counts(predicted_yx, target_yx, threshold)
    if counted == 0:
        raise ValueError("PCKh is undefined: no target has two head points (nose, neck, eyes, ears) "
                         "and a joint to count")
    return correct / counted


ESTIMATOR_LABEL = "MediaPipe BlazePose 0.10.21 (the papers used OpenPose: indicative)"


class PoseEstimationError(RuntimeError):
    """The keypoint estimator's subprocess failed (the pose environment could not be built, or it crashed)."""


def estimate_with_pose_environment(images, work_dir, repo_root=None, min_detection_confidence=None):
    """(N, 18, 2) keypoints of uint8 images by scripts/estimate_keypoints.py in .venv-pose (built on first use);
    rows of -1 where no person was found.

    The estimator needs numpy < 2, so it runs as a subprocess in its own environment; the images go through
    PNG files in work_dir. Raises PoseEstimationError naming the command when it fails.
    """
    import subprocess
    from pathlib import Path

    import imageio.v3 as iio

    from dgan_tf.data.annotations import read_annotations

    repo_root = Path(repo_root or Path(__file__).resolve().parents[2])
    wrapper = repo_root / "scripts" / "with_pose_env.sh"
    if not wrapper.is_file():
        raise PoseEstimationError(f"estimating keypoints needs the pose environment's wrapper {wrapper} (a checkout "
                                  "of dgan_tf)")
    folder = Path(work_dir) / "pckh-images"
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"{i:06d}.png" for i in range(len(images))]
    for name, image in zip(names, images):
        iio.imwrite(folder / name, np.asarray(image, dtype=np.uint8))
    output = Path(work_dir) / "pckh-keypoints.csv"
    command = ["bash", str(wrapper), "python", "scripts/estimate_keypoints.py", str(folder), "--output", str(output),
               "--force", "--no-progress"]  # --force: the work file of an earlier run is replaced
    if min_detection_confidence is not None:
        command += ["--min-detection-confidence", str(min_detection_confidence)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=repo_root)
    if done.returncode not in (0, 1):  # 1: no person in any image, still a valid (all -1) file
        raise PoseEstimationError(f"keypoint estimation failed ({' '.join(command)}): {done.stderr.strip()[-500:]}")
    table = read_annotations(output)
    missing = np.full((NUM_JOINTS, 2), MISSING, dtype=np.int32)
    return np.stack([table.get(name) if name in table else missing for name in names])  # (N, 18, 2)
