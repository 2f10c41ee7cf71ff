"""Pictures for people: skeleton drawings and sample grids (source | target pose | generated | target)."""

from pathlib import Path

import numpy as np
from skimage.draw import disk, line_aa

from dgan_tf.files import atomic_write_bytes
from dgan_tf.geometry.keypoints import SKELETON

# One colour per skeleton edge, cycling through a readable palette.
_PALETTE = np.array([
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170),
], dtype=np.uint8)


def to_uint8(image):
    """Image in [-1, 1] -> uint8 as the original did it (test.py, and the training samples):
    (255 * ((x + 1) / 2.0)).astype(uint8), i.e. TRUNCATED, not rounded (SPEC §7).

    Computed in the image's own float precision, as numpy did there: float32 for a generator's
    output. Used for generated images and for every picture shown to people (one rule; a display
    differs from rounding by at most one grey level).
    """
    image = np.asarray(image)
    if not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    return np.clip(255 * ((image + 1) / 2.0), 0, 255).astype(np.uint8)


def stored_pixels(image):
    """A real image scaled to [-1, 1] by the input pipeline -> the uint8 pixels of its file, exactly (rounded)."""
    return np.clip(np.rint(255.0 * (np.asarray(image, np.float64) + 1.0) / 2.0), 0, 255).astype(np.uint8)


def original_round_trip(pixels):
    """uint8 pixels of a real image -> uint8 as the original's evaluation saw them (SPEC §7).

    Its loader held images in float64, (v / 255 - 0.5) * 2, and test.py truncated them back with
    to_uint8: pixel values 1, 2, 5, 9, 10, 13, ... 58 (20 of the 256) come back one lower.
    """
    return to_uint8((np.asarray(pixels, np.float64) / 255 - 0.5) * 2)


def real_to_uint8(image):
    """A real image scaled to [-1, 1] by the input pipeline -> uint8 as the original's evaluation saw it.

    Our pipeline holds images in float32, where truncation would lower every value 1-63; so this
    recovers the stored pixels and repeats the original's float64 round trip.
    """
    return original_round_trip(stored_pixels(image))


def draw_pose(keypoints_yx, image_size, background=None, radius=2):
    """Keypoints (18, 2) (y, x), -1 missing -> (H, W, 3) uint8 skeleton drawing."""
    height, width = image_size
    canvas = np.zeros((height, width, 3), np.uint8) if background is None else background.copy()
    keypoints = np.asarray(keypoints_yx)
    visible = np.all(keypoints >= 0, axis=-1)
    for colour, (a, b) in zip(_PALETTE, SKELETON):
        if visible[a] and visible[b]:
            rr, cc, val = line_aa(int(keypoints[a, 0]), int(keypoints[a, 1]),
                                  int(keypoints[b, 0]), int(keypoints[b, 1]))
            inside = (rr >= 0) & (rr < height) & (cc >= 0) & (cc < width)
            canvas[rr[inside], cc[inside]] = (val[inside, None] * colour).astype(np.uint8)
    for j in np.flatnonzero(visible):
        rr, cc = disk((keypoints[j, 0], keypoints[j, 1]), radius, shape=(height, width))
        canvas[rr, cc] = _PALETTE[j % len(_PALETTE)]
    return canvas


def sample_grid(source_images, target_keypoints, generated_images, target_images):
    """Batches in [-1, 1] -> one uint8 image, a row per sample: source | target pose | generated | target."""
    rows = []
    for src, kp, gen, tgt in zip(source_images, target_keypoints, generated_images, target_images):
        size = np.asarray(src).shape[:2]
        rows.append(np.concatenate([real_to_uint8(src), draw_pose(kp, size), to_uint8(gen), real_to_uint8(tgt)],
                                   axis=1))
    return np.concatenate(rows, axis=0)


def write_image_atomic(path, image, durable=False):
    """Write a PNG/JPEG so that a reader never sees a half-written file (no fsync unless durable)."""
    import imageio.v3 as iio

    return atomic_write_bytes(path, iio.imwrite("<bytes>", image, extension=Path(path).suffix), durable=durable)
