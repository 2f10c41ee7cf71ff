"""Pose transfer on a person's own photo: fit it to the model's size, generate each target pose, map it back.

The photo (any size) is resized, keeping its aspect ratio, and padded (edge pixels repeated) to the model's
H x W; its keypoints go through the same map. Target poses are given in the photo's frame (or in `target_frame`,
e.g. 128x64 for poses from a Market annotation CSV). Each generated image is cropped back to the resized photo and
resized to the photo's size. One interface runs a training run's Keras generator or an exported SavedModel.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS
from dgan_tf.images import ImageSize, input_image_size, serving_uint8

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
# Generators: a training run's Keras model or an export, behind one call


def check_generator_inputs(source_images, source_keypoints, target_keypoints, image_size):
    """(images uint8 (B, H, W, 3), keypoints float32 (B, 18, 2) x 2) as a generator takes them, or a ValueError naming
    the input: TensorFlow's Python binding would convert them silently (float images in [-1, 1] to 0 and 1, an
    int32 300 to 44). Images: uint8, or integers in 0-255; keypoints: finite real numbers, (y, x) pixels, -1 missing.
    """
    height, width = image_size
    images = np.asarray(source_images)
    if images.ndim != 4 or images.shape[1:] != (height, width, 3) or not len(images):
        raise ValueError(f"source_images must have shape (batch, {height}, {width}, 3), uint8 RGB. Received: shape "
                         f"{images.shape}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.integer) or images.dtype == np.bool_:
            low, high = (float(images.min()), float(images.max())) if images.dtype.kind in "fiub" else (None, None)
            shown = f" in [{low:.4g}, {high:.4g}]" if low is not None else ""
            raise ValueError(
                f"source_images must be uint8 RGB (0-255), as serving_default takes them. Received: {images.dtype}"
                f"{shown}. From [-1, 1]: np.round((x + 1) * 127.5).astype(np.uint8); from [0, 1]: "
                "np.round(x * 255).astype(np.uint8)")
        if images.min() < 0 or images.max() > 255:
            raise ValueError(f"source_images must hold values 0-255 (uint8 RGB). Received: {images.dtype} from "
                             f"{images.min()} to {images.max()}")
        images = images.astype(np.uint8)
    checked = []
    for name, keypoints in (("source_keypoints", source_keypoints), ("target_keypoints", target_keypoints)):
        array = np.asarray(keypoints)
        if array.shape != (len(images), NUM_JOINTS, 2):
            raise ValueError(f"{name} must have shape ({len(images)}, {NUM_JOINTS}, 2): (y, x) pixels of each image's "
                             f"{NUM_JOINTS} joints. Received: shape {array.shape}")
        if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be numbers, (y, x) pixels, -1 for a missing joint. Received: {array.dtype}")
        with np.errstate(over="ignore", invalid="ignore"):
            array = array.astype(np.float32)
        if not np.all(np.isfinite(array)):
            raise ValueError(f"{name} must be finite float32 numbers, (y, x) pixels, -1 for a missing joint. "
                             "Received: NaN, Inf or a value beyond float32")
        checked.append(array)
    return (images, *checked)


class KerasGenerator:
    """A Keras generator: uint8 images and keypoints in, uint8 images out (rounded, as the export).

    On TensorFlow it runs the export's own serving function (dgan_tf.inference.export.build_serving_module) in
    this process, so that a transfer from a run and one from its export are equal to the bit; on JAX it runs
    the model and rounds with `serving_uint8`. Inputs are checked first (check_generator_inputs).
    """

    def __init__(self, model, source=None):
        import keras

        self.model = model
        self.source = source
        self.image_size = input_image_size(model)
        self._serve = None
        if keras.backend.backend() == "tensorflow":
            from dgan_tf.inference.export import OUTPUT_NAME, build_serving_module

            serve = build_serving_module(model).serve_uint8
            self._serve = lambda *inputs: serve(*inputs)[OUTPUT_NAME].numpy()

    def __call__(self, source_images, source_keypoints, target_keypoints):
        import keras

        images, source_keypoints, target_keypoints = check_generator_inputs(
            source_images, source_keypoints, target_keypoints, self.image_size)
        if self._serve is not None:
            return self._serve(images, source_keypoints, target_keypoints)
        images = (images.astype(np.float32) / 255.0 - 0.5) * 2.0  # as the training pipeline
        generated = self.model.predict_on_batch([images, source_keypoints, target_keypoints])
        return serving_uint8(keras.ops.convert_to_numpy(generated))


class SavedModelGenerator:
    """An export of scripts/export.py, loaded and checked by `dgan_tf.inference.export.load_export` and run through
    its serving_default signature (no dgan_tf code in the graph); inputs are checked first (check_generator_inputs)."""

    def __init__(self, export_dir):
        from dgan_tf.inference.export import load_export

        self._export = load_export(export_dir)
        self.source = self._export.folder
        self.image_size = self._export.image_size

    def __call__(self, source_images, source_keypoints, target_keypoints):
        import tensorflow as tf

        from dgan_tf.inference.export import OUTPUT_NAME

        images, source_keypoints, target_keypoints = check_generator_inputs(
            source_images, source_keypoints, target_keypoints, self.image_size)
        outputs = self._export.signature(source_image=tf.constant(images),
                                         source_keypoints=tf.constant(source_keypoints),
                                         target_keypoints=tf.constant(target_keypoints))
        return outputs[OUTPUT_NAME].numpy()


def is_export(path):
    """True for a SavedModel folder or a model folder of numbered versions."""
    from dgan_tf.inference.export import find_export

    try:
        find_export(path)
        return True
    except FileNotFoundError:
        return False


def _neither(path):
    return FileNotFoundError(f"{path} is neither a training run (a folder with generator.keras, or the .keras file) "
                             "nor an export (a folder with saved_model.pb, or numbered version folders)")


def load_generator(path):
    """A run folder or .keras file -> KerasGenerator; an export (version or model folder) -> SavedModelGenerator."""
    from dgan_tf.run import Run

    if is_export(path):
        return SavedModelGenerator(path)
    try:
        run = Run.open(path)
        return KerasGenerator(run.load_generator(), source=run.folder)
    except FileNotFoundError:
        raise _neither(path) from None


def model_image_size(path):
    """The (H, W) a run or export generates, read from its metadata without loading the network."""
    from dgan_tf.inference.export import find_export, read_export_metadata
    from dgan_tf.run import Run, check_generator

    if is_export(path):
        return ImageSize.of(read_export_metadata(find_export(path))["image_size"])
    try:
        run = Run.open(path)
        if run.has_config():
            return ImageSize.of(run.load_config().image_size)
        return check_generator(run.load_generator(), run.generator_path)
    except FileNotFoundError:
        raise _neither(path) from None


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
        outputs.extend(inputs.letterbox.unmap(image) for image in generator(*batch))
    return outputs[:count]


def output_name(index, label):
    """`003_<label>.png`, the label reduced to characters safe in any file system."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "pose"
    return f"{index:03d}_{safe}.png"


def write_outputs(output_dir, images, labels, gif=False, fps=DEFAULT_FPS):
    """One PNG per image, atomically, plus an animated GIF of the sequence (looping) with gif=True."""
    import imageio.v3 as iio

    from dgan_tf.files import atomic_write_bytes
    from dgan_tf.visualize import write_image_atomic

    output_dir = Path(output_dir)
    paths = [write_image_atomic(output_dir / output_name(i, label), image) for i, (image, label)
             in enumerate(zip(images, labels))]
    if gif:
        data = iio.imwrite("<bytes>", np.stack(images), extension=".gif", duration=1000.0 / fps, loop=0)
        paths.append(atomic_write_bytes(output_dir / GIF_NAME, data, durable=False))
    return paths
