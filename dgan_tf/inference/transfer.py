"""Pose transfer on a person's own photo: fit it to the model's size, generate each target pose, map it back.

The photo (any size) is resized, keeping its aspect ratio, and padded (edge pixels repeated) to the model's
H x W; its keypoints go through the same map. Target poses are given in the photo's frame (or in `target_frame`,
e.g. 128x64 for poses from a Market annotation CSV). Each generated image is cropped back to the resized photo and
resized to the photo's size. The generator is any of dgan_tf.inference.generators (a run's or an export's).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgan_tf.geometry.keypoints import MISSING
from dgan_tf.images import ImageSize

DEFAULT_BATCH_SIZE = 8
DEFAULT_FPS = 8
GIF_NAME = "transfer.gif"


def _resize(image, size):
    """(h, w, 3) uint8 -> size (H, W) with Pillow's bicubic filter (antialiased when shrinking)."""
    from PIL import Image

    height, width = size
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BICUBIC), dtype=np.uint8)


@dataclass(frozen=True)
class Letterbox:
    """The map from a frame (h, w) to the model's (H, W): scale keeping the aspect ratio, then pad to centre."""

    frame_size: tuple
    model_size: tuple
    resized_size: tuple
    offset: tuple  # (top, left) of the resized frame inside the model's frame

    @classmethod
    def fit(cls, frame_size, model_size):
        frame_size, model_size = ImageSize.of(frame_size, "frame_size"), ImageSize.of(model_size, "model_size")
        scale = min(model_size[0] / frame_size[0], model_size[1] / frame_size[1])
        resized = tuple(min(m, max(1, int(round(f * scale)))) for f, m in zip(frame_size, model_size))
        offset = tuple((m - r) // 2 for m, r in zip(model_size, resized))
        return cls(frame_size, model_size, resized, offset)

    def image(self, image):
        """(h, w, 3) uint8 in the frame -> (H, W, 3) uint8 in the model's frame."""
        image = np.asarray(image, dtype=np.uint8)
        if image.shape[:2] != self.frame_size:
            raise ValueError(f"image of size {image.shape[:2]} given to a letterbox for {self.frame_size}")
        resized = _resize(image, self.resized_size)
        (top, left), (height, width) = self.offset, self.model_size
        pad = ((top, height - self.resized_size[0] - top), (left, width - self.resized_size[1] - left), (0, 0))
        return np.pad(resized, pad, mode="edge")

    def keypoints(self, keypoints_yx):
        """(..., 18, 2) (y, x) in the frame -> the model's frame, rounded to pixels as the training data; -1 kept."""
        keypoints = np.asarray(keypoints_yx, dtype=np.float32)
        scale = np.array([r / f for r, f in zip(self.resized_size, self.frame_size)], np.float32)
        # Pixel centres map onto pixel centres: (p + 0.5) * scale - 0.5.
        mapped = np.round((keypoints + 0.5) * scale - 0.5 + np.array(self.offset, np.float32))
        missing = np.any(keypoints == MISSING, axis=-1, keepdims=True)
        return np.where(missing, np.float32(MISSING), mapped).astype(np.float32)

    def unmap(self, image):
        """(H, W, 3) uint8 in the model's frame -> (h, w, 3) in the frame: crop the padding, resize back."""
        (top, left), (height, width) = self.offset, self.resized_size
        return _resize(np.ascontiguousarray(image[top:top + height, left:left + width]), self.frame_size)


# ---------------------------------------------------------------------------------------------------
# Transfer


@dataclass(frozen=True)
class TransferInputs:
    """Everything the generator gets, in the model's frame, plus the map back to the photo."""

    source_image: np.ndarray  # (H, W, 3) uint8
    source_keypoints: np.ndarray  # (18, 2)
    target_keypoints: np.ndarray  # (N, 18, 2)
    letterbox: Letterbox

    def batches(self, batch_size, pad=False):
        """(source images, source keypoints, target keypoints) batches of at most batch_size targets.

        pad: fill the last batch up to batch_size by repeating its last target, so that every batch has one shape
        (a Keras predict function is traced again for each new batch size); the caller drops the extra outputs.
        """
        for start in range(0, len(self.target_keypoints), batch_size):
            targets = self.target_keypoints[start:start + batch_size]
            if pad and len(targets) < batch_size:
                targets = np.concatenate([targets, np.repeat(targets[-1:], batch_size - len(targets), axis=0)])
            count = len(targets)
            yield (np.repeat(self.source_image[None], count, axis=0),
                   np.repeat(self.source_keypoints[None], count, axis=0), targets)


def check_pose_frames(source_image, source_pose, target_poses, target_frame=None):
    """PoseError naming the joint and the frame unless every pose lies in its frame: the source pose in the photo's,
    the target poses in `target_frame` (default the photo's too)."""
    from dgan_tf.inference.poses import require_inside

    photo = ImageSize.of(source_image.shape[:2])
    require_inside(source_pose, photo, "source pose", "the photo", "the source pose must be in the photo's pixels")
    frame = photo if target_frame is None else ImageSize.of(target_frame)
    where = "the photo" if target_frame is None else "the target frame"
    hint = ("target poses are in the source photo's pixels unless a target frame (--target-frame HxW) says "
            "otherwise" if target_frame is None else "")
    for pose in target_poses:
        require_inside(pose, frame, "target pose", where, hint)


def prepare_inputs(source_image, source_pose, target_poses, model_size, target_frame=None):
    """Photo (h, w, 3) uint8, its Pose and the target Poses -> TransferInputs in the model's frame.

    target_frame: (h, w) the target poses were measured in; default the photo's own frame. A joint outside its
    frame is refused (PoseError naming it): the letterbox would put it nowhere the model can use.
    """
    check_pose_frames(source_image, source_pose, target_poses, target_frame)
    letterbox = Letterbox.fit(source_image.shape[:2], model_size)
    target_box = letterbox if target_frame is None else Letterbox.fit(target_frame, model_size)
    targets = np.stack([target_box.keypoints(p.keypoints_yx) for p in target_poses]) if target_poses else \
        np.zeros((0, 18, 2), np.float32)
    return TransferInputs(letterbox.image(source_image), letterbox.keypoints(source_pose.keypoints_yx), targets,
                          letterbox)


def transfer(generator, inputs, batch_size=DEFAULT_BATCH_SIZE):
    """Generate every target pose; returns uint8 images in the photo's frame, one per target."""
    count = len(inputs.target_keypoints)
    batch_size = max(1, min(batch_size, count))
    outputs = []
    for batch in inputs.batches(batch_size, pad=True):
        outputs.extend(inputs.letterbox.unmap(image) for image in generator.generate(*batch))
    return outputs[:count]


def output_name(index, label):
    """`003_<label>.png`, the label reduced to characters safe in any file system."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "pose"
    return f"{index:03d}_{safe}.png"


def write_outputs(output_dir, images, labels, gif=False, fps=DEFAULT_FPS):
    """One PNG per image, atomically, plus an animated GIF of the sequence (looping) with gif=True."""
    from dgan_tf.visualize import write_gif_atomic, write_image_atomic

    output_dir = Path(output_dir)
    paths = [write_image_atomic(output_dir / output_name(i, label), image) for i, (image, label)
             in enumerate(zip(images, labels))]
    if gif:
        paths.append(write_gif_atomic(output_dir / GIF_NAME, images, fps))
    return paths
