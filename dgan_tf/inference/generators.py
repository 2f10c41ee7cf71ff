"""The public way to run a trained generator: `dgan_tf.load_generator(path).generate(images, source, target)`.

`load_generator` takes a training run folder, its `.keras` file or an export (a version folder, or the model
folder: its newest version) and returns a KerasGenerator or a SavedModelGenerator, one interface:

    generator = dgan_tf.load_generator("runs/synthetic-dsc")
    generated = generator.generate(image, source_keypoints, target_keypoints)

images: (H, W, 3) or (B, H, W, 3) at the model's size (`generator.image_size`; transfer.py and
dgan_tf.inference.transfer fit photos of other sizes), either uint8 RGB (0-255; other integer types holding 0-255
too) or float in [-1, 1], (x / 255 - 0.5) * 2 as in training, fed to the network as it is. [0, 1] floats are not
told apart from dark [-1, 1] ones: convert them (x * 2 - 1) or pass uint8. Keypoints: (18, 2) or (B, 18, 2), (y, x)
pixels in the OpenPose/COCO-18 order, -1 for a missing joint. An input without the batch axis is used for every
item of the batch (one photo, several target poses). Returns (B, H, W, 3), or (H, W, 3) when no input has a batch
axis: uint8 for uint8 images (rounded as the export's serving_default), float32 in [-1, 1] for float images (the
network's output, as serving_float). Anything else is a ValueError naming the input and what was expected, before
TensorFlow sees it (its Python binding would convert silently: float images to 0 and 1, an int32 300 to 44).

A run runs the export's own serving functions in this process (on TensorFlow), so that a run and its export give
the same images to the bit.
"""

import numpy as np

from dgan_tf.geometry.keypoints import NUM_JOINTS
from dgan_tf.images import ImageSize, input_image_size, serving_uint8
from dgan_tf.inference.export import FLOAT_IMAGE_TOLERANCE


class GeneratorInputs:
    """The inputs of one `generate` call, checked: batched arrays and whether the caller gave a batch axis."""

    def __init__(self, images, source_keypoints, target_keypoints, batched):
        self.images = images  # (B, H, W, 3) uint8, or float32 in [-1, 1]
        self.source_keypoints = source_keypoints  # (B, 18, 2) float32
        self.target_keypoints = target_keypoints  # (B, 18, 2) float32
        self.batched = batched

    @property
    def is_float(self):
        return self.images.dtype == np.float32

    @classmethod
    def check(cls, images, source_keypoints, target_keypoints, image_size):
        """GeneratorInputs, or a ValueError naming the input, its expected shape, dtype and range."""
        height, width = image_size
        images = np.asarray(images)
        if images.ndim not in (3, 4) or images.shape[-3:] != (height, width, 3):
            raise ValueError(f"images must have shape ({height}, {width}, 3) or (batch, {height}, {width}, 3), RGB at "
                             f"the model's size (dgan_tf.inference.transfer fits photos of other sizes). Received: "
                             f"shape {images.shape}")
        if images.size == 0:
            raise ValueError(f"images is an empty batch. Received: shape {images.shape}")
        inputs = {"images": (_checked_images(images if images.ndim == 4 else images[None]), images.ndim == 4),
                  "source_keypoints": _checked_keypoints("source_keypoints", source_keypoints),
                  "target_keypoints": _checked_keypoints("target_keypoints", target_keypoints)}
        sizes = {name: len(array) for name, (array, has_batch_axis) in inputs.items() if has_batch_axis}
        if len(set(sizes.values())) > 1 or 0 in sizes.values():
            shown = ", ".join(f"{name} {size}" for name, size in sizes.items())
            raise ValueError(f"the inputs with a batch axis must have one batch size, at least 1. Received: {shown}")
        count = max(sizes.values(), default=1)
        arrays = [array if len(array) == count else np.repeat(array, count, axis=0) for array, _ in inputs.values()]
        return cls(*arrays, batched=bool(sizes))


def _checked_images(images):
    """(B, H, W, 3) -> uint8, or float32 in [-1, 1]; a ValueError for any other dtype or range."""
    if images.dtype == np.uint8:
        return images
    expected = ("images must be uint8 RGB (0-255), or float in [-1, 1] ((x / 255 - 0.5) * 2, as in training). "
                "Received: ")
    if np.issubdtype(images.dtype, np.floating):
        with np.errstate(invalid="ignore"):
            low, high = float(np.min(images)), float(np.max(images))
        inside = -1 - FLOAT_IMAGE_TOLERANCE <= low and high <= 1 + FLOAT_IMAGE_TOLERANCE  # as serving_float checks
        if not (np.all(np.isfinite(images)) and inside):
            hint = (" (0-255 floats: pass them as uint8, images.astype(np.uint8))" if high > 1 + FLOAT_IMAGE_TOLERANCE
                    and low >= 0 else "")
            raise ValueError(f"{expected}{images.dtype} from {low:.4g} to {high:.4g}{hint}")
        return images.astype(np.float32)
    if not np.issubdtype(images.dtype, np.integer) or images.dtype == np.bool_:
        raise ValueError(f"{expected}{images.dtype}")
    if images.min() < 0 or images.max() > 255:
        raise ValueError(f"{expected}{images.dtype} from {images.min()} to {images.max()}")
    return images.astype(np.uint8)


def _checked_keypoints(name, keypoints):
    """((B, 18, 2) float32, whether the caller gave the batch axis), or a ValueError naming the input."""
    array = np.asarray(keypoints)
    if array.shape[-2:] != (NUM_JOINTS, 2) or array.ndim not in (2, 3):
        raise ValueError(f"{name} must have shape ({NUM_JOINTS}, 2) or (batch, {NUM_JOINTS}, 2): (y, x) pixels of "
                         f"the {NUM_JOINTS} joints, -1 for a missing one. Received: shape {array.shape}")
    if array.dtype == np.bool_ or array.dtype.kind not in "iuf":
        raise ValueError(f"{name} must be numbers, (y, x) pixels, -1 for a missing joint. Received: {array.dtype}")
    with np.errstate(over="ignore", invalid="ignore"):
        converted = array.astype(np.float32)
    if not np.all(np.isfinite(converted)):
        raise ValueError(f"{name} must be finite float32 numbers, (y, x) pixels, -1 for a missing joint. "
                         "Received: NaN, Inf or a value beyond float32")
    return (converted, True) if array.ndim == 3 else (converted[None], False)


class Generator:
    """What `load_generator` returns: `image_size` (H, W), `source` (the folder it came from) and `generate`."""

    image_size: ImageSize
    source: object

    def generate(self, images, source_keypoints, target_keypoints):
        """Generated images of the person in `images` in the target poses (shapes, dtypes: the module's docstring)."""
        inputs = GeneratorInputs.check(images, source_keypoints, target_keypoints, self.image_size)
        generated = self._generate(inputs)
        return generated if inputs.batched else generated[0]

    def _generate(self, inputs):
        raise NotImplementedError


class KerasGenerator(Generator):
    """A Keras generator model. On TensorFlow it runs the export's own serving functions
    (dgan_tf.inference.export.build_serving_module) in this process, so that a run and its export give the same
    images to the bit; on JAX it runs the model and rounds uint8 outputs with `serving_uint8`."""

    def __init__(self, model, source=None):
        import keras

        self.model = model
        self.source = source
        self.image_size = input_image_size(model)
        self._serving = None
        if keras.backend.backend() == "tensorflow":
            from dgan_tf.inference.export import build_serving_module

            self._serving = build_serving_module(model)

    def _generate(self, inputs):
        import keras

        from dgan_tf.inference.export import OUTPUT_NAME

        arrays = (inputs.images, inputs.source_keypoints, inputs.target_keypoints)
        if self._serving is not None:
            serve = self._serving.serve_float if inputs.is_float else self._serving.serve_uint8
            return serve(*arrays)[OUTPUT_NAME].numpy()
        images = inputs.images if inputs.is_float else (inputs.images.astype(np.float32) / 255.0 - 0.5) * 2.0
        generated = keras.ops.convert_to_numpy(self.model.predict_on_batch([images, *arrays[1:]]))
        return generated.astype(np.float32) if inputs.is_float else serving_uint8(generated)


class SavedModelGenerator(Generator):
    """An export of scripts/export.py, loaded and checked by `dgan_tf.inference.export.load_export`, run through its
    serving_default signature (uint8 images) or serving_float (float images); no dgan_tf code in the graph."""

    def __init__(self, export_dir):
        from dgan_tf.inference.export import load_export

        self._export = load_export(export_dir)
        self.source = self._export.folder
        self.image_size = self._export.image_size

    def _generate(self, inputs):
        import tensorflow as tf

        from dgan_tf.inference.export import FLOAT_SIGNATURE, OUTPUT_NAME

        signature = self._export.signature
        if inputs.is_float:
            signature = self._export.float_signature
            if signature is None:
                raise ValueError(f"the export {self.source} has no {FLOAT_SIGNATURE} signature: pass uint8 images")
        outputs = signature(source_image=tf.constant(inputs.images),
                            source_keypoints=tf.constant(inputs.source_keypoints),
                            target_keypoints=tf.constant(inputs.target_keypoints))
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
    """A run folder or .keras file -> KerasGenerator; an export (version or model folder) -> SavedModelGenerator.
    Both have `.generate(images, source_keypoints, target_keypoints)` (see this module's docstring)."""
    from dgan_tf.run import Run

    if is_export(path):
        return SavedModelGenerator(path)
    try:
        run = Run.open(path)
        return KerasGenerator(run.load_model(), source=run.folder)
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
        return check_generator(run.load_model(), run.generator_path)
    except FileNotFoundError:
        raise _neither(path) from None
