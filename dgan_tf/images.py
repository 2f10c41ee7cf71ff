"""Images in and out of numbers: one image-size type, one file reader, and one uint8 conversion per purpose.

numpy only at module level (imageio and Pillow are imported where used): the keypoint-estimation
environment (.venv-pose: numpy 1.26, no Keras or TensorFlow) reads its photos through this module too.

The uint8 conversions of a [-1, 1] image, each named for its purpose:
  evaluation_uint8  the original's test.py: 255 (x + 1) / 2 TRUNCATED, in the image's own float precision
  serving_uint8     the SavedModel export's uint8 output: round((x + 1) * 127.5) in float32, half to even
  stored_pixels     a real image from the input pipeline: the uint8 pixels of its file, exactly
  real_to_uint8     a real image as the original's evaluation saw it (its float64 round trip, truncated)
"""

import os
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

_SIZE_TEXT = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")
NOT_DECODABLE = "is not a decodable image (PNG or JPEG expected): truncated or damaged"


class ImageSize(NamedTuple):
    """(height, width) of an image in pixels; a tuple, so it equals (128, 64) and is a list in JSON."""

    height: int
    width: int

    @classmethod
    def of(cls, value, name="image_size"):
        """'HxW' (any case of x), (H, W) of Python or numpy integers, or an ImageSize -> ImageSize.

        Refused, with one ValueError naming `name`: bools, floats (128.0 too: a size computed in floats may
        have been truncated on the way), other lengths, values below 1.
        """
        sides = None
        if isinstance(value, str):
            match = _SIZE_TEXT.match(value)
            sides = None if match is None else tuple(int(side) for side in match.groups())
        elif isinstance(value, (tuple, list, np.ndarray)) and np.ndim(value) == 1 and len(value) == 2:
            if all(_is_integer(side) for side in value):
                sides = tuple(int(side) for side in value)
        if sides is None or min(sides) < 1:
            raise ValueError(f"{name} must be 'HxW' or (height, width) with positive integers. "
                             f"Received: {name}={value!r}")
        return cls(*sides)

    def __str__(self):
        return f"{self.height}x{self.width}"


def _is_integer(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def input_image_size(model):
    """The ImageSize of a Keras model's first input (B, H, W, C), e.g. a generator's source image."""
    return ImageSize.of(tuple(model.inputs[0].shape[1:3]), name="the model's input image size")


# ---------------------------------------------------------------------------------------------------
# Reading image files


class ImageReadError(ValueError):
    """An image file that cannot be read, converted or is of the wrong size; the message names the file."""

    def __init__(self, path, reason):
        super().__init__(path, reason)
        self.path = path
        self.reason = reason

    def __str__(self):
        return f"{self.path} {self.reason}"


def _check_file(path):
    """Refuse, naming the file, what is not a readable file; returns the path."""
    path = Path(path)
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image file")
    if not path.is_file():
        raise ImageReadError(path, "does not exist")
    if not os.access(path, os.R_OK):
        raise ImageReadError(path, "cannot be read (permission denied)")
    return path


def read_image(path, size=None):
    """An image file -> its stored pixels as (H, W, 3) uint8 RGB; ImageReadError names the file.

    Decoded by imageio (the first frame), without EXIF rotation, as the training pipeline; converted by
    to_rgb_uint8 (16-bit colour PNGs come from Pillow already cut to their high byte: v // 256).
    size: anything ImageSize.of takes; an image of another size is refused.
    """
    import imageio.v3 as iio

    expected = None if size is None else ImageSize.of(size, name="size")
    path = _check_file(path)
    try:
        image = iio.imread(path, index=0)
        if image.ndim == 3 and image.shape[-1] == 4 and iio.immeta(path, index=0).get("mode") == "CMYK":
            image = iio.imread(path, index=0, mode="RGB")  # a CMYK JPEG, converted as TensorFlow's decoder does
    except PermissionError:
        raise ImageReadError(path, "cannot be read (permission denied)") from None
    except Exception:  # imageio raises many types (and suggests plugins) for data it cannot decode
        raise ImageReadError(path, NOT_DECODABLE) from None
    image = to_rgb_uint8(image, path)
    if expected is not None and image.shape[:2] != expected:
        raise ImageReadError(path, f"has size {ImageSize(*image.shape[:2])}, expected {expected}")
    return image


def to_rgb_uint8(image, path="the image"):
    """Any image array imageio returns -> (H, W, 3) uint8; ImageReadError naming `path` otherwise.

    8-bit as it is; 16-bit rescaled to 8 bits as round(v / 257) (65535 -> 255, never wrapped); 1-bit (bool)
    to 0/255; grey, grey + alpha and RGBA to RGB (alpha dropped). Float and other integer types are refused:
    their range is unknown.
    """
    image = np.asarray(image)
    if image.dtype == np.uint16:
        image = ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)  # round(v / 257), in integers
    elif image.dtype == np.bool_:
        image = image.astype(np.uint8) * 255
    elif image.dtype != np.uint8:
        raise ImageReadError(path, f"has pixels of type {image.dtype}, which are not supported (8-bit or 16-bit "
                                   "images only); save it as an 8-bit PNG or JPEG")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 2, 3, 4) or min(image.shape[:2]) < 1:
        raise ImageReadError(path, f"has shape {image.shape}, not an image of 1 to 4 channels")
    if image.shape[-1] in (1, 2):  # grey, grey + alpha
        image = np.repeat(image[..., :1], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def read_image_size(path):
    """The ImageSize of an image file, from its header without decoding the pixels; ImageReadError names it."""
    from PIL import Image

    path = _check_file(path)
    try:
        with Image.open(path) as image:
            width, height = image.size
    except PermissionError:
        raise ImageReadError(path, "cannot be read (permission denied)") from None
    except Exception:  # UnidentifiedImageError, OSError, and whatever a damaged header raises
        raise ImageReadError(path, NOT_DECODABLE) from None
    return ImageSize(height, width)


# ---------------------------------------------------------------------------------------------------
# [-1, 1] -> uint8, one conversion per purpose


def evaluation_uint8(image):
    """Image in [-1, 1] -> uint8 as the original's evaluation (test.py) did: (255 * ((x + 1) / 2.0)).astype(uint8).

    TRUNCATED, not rounded (pose-gan test.py:86-87 at 8693ec4, deprocess_image), in the image's own float
    precision as numpy did there (float32 for a generator's output; integers are taken as float32). Values outside
    [-1, 1] are clipped.
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    return np.clip(255 * ((image + 1) / 2.0), 0, 255).astype(np.uint8)


def serving_uint8(image):
    """Image in [-1, 1] -> uint8 exactly as the SavedModel export computes it in its graph (a picture for people).

    tf.cast(tf.clip_by_value(tf.round((x + 1.0) * 127.5), 0, 255), tf.uint8) in float32; tf.round, like
    np.rint, rounds half to even.
    """
    image = np.asarray(image, dtype=np.float32)
    scaled = (image + np.float32(1.0)) * np.float32(127.5)  # float32, as the graph
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def stored_pixels(image):
    """A real image scaled to [-1, 1] by the input pipeline -> the uint8 pixels of its file, exactly (rounded)."""
    return np.clip(np.rint(255.0 * (np.asarray(image, np.float64) + 1.0) / 2.0), 0, 255).astype(np.uint8)


def original_round_trip(pixels):
    """uint8 pixels of a real image -> uint8 as the original's evaluation saw them (pose-gan test.py:94 at 8693ec4).

    Its loader held images in float64, (v / 255 - 0.5) * 2, and test.py truncated them back with
    evaluation_uint8: pixel values 1, 2, 5, 9, 10, 13, ... 58 (20 of the 256) come back one lower.
    """
    return evaluation_uint8((np.asarray(pixels, np.float64) / 255 - 0.5) * 2)


def real_to_uint8(image):
    """A real image scaled to [-1, 1] by the input pipeline -> uint8 as the original's evaluation saw it.

    Our pipeline holds images in float32, where truncation would lower every value 1-63; so this
    recovers the stored pixels and repeats the original's float64 round trip.
    """
    return original_round_trip(stored_pixels(image))


def check_images(images):
    """A batch for a scoring network -> a list of uint8 (H, W, 3) RGB arrays, from (N, H, W, 3) or a sequence;
    errors name the bad index."""
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"`images` must have shape (N, H, W, 3). Received: images.shape={images.shape}")
        images = list(images)
    images = list(images)
    if not images:
        raise ValueError("`images` is empty.")
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            description = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise ValueError(f"Each image must be a uint8 (H, W, 3) RGB array. Received: images[{i}] is {description}")
    return images
