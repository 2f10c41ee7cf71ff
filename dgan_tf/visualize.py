"""Pictures for people: skeleton drawings and sample grids (source | target pose | generated | target)."""

from pathlib import Path

import numpy as np
from skimage.draw import disk, line_aa

from dgan_tf.files import atomic_write_bytes
from dgan_tf.geometry.keypoints import SKELETON
from dgan_tf.images import serving_uint8, stored_pixels

# One colour per skeleton edge, cycling through a readable palette.
_PALETTE = np.array([
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170),
], dtype=np.uint8)


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
    """Batches in [-1, 1] -> one uint8 image, a row per sample: source | target pose | generated | target.

    A picture for people: real images as their stored pixels, generated ones rounded as the export serves them.
    """
    rows = []
    for src, kp, gen, tgt in zip(source_images, target_keypoints, generated_images, target_images):
        size = np.asarray(src).shape[:2]
        rows.append(np.concatenate([stored_pixels(src), draw_pose(kp, size), serving_uint8(gen), stored_pixels(tgt)],
                                   axis=1))
    return np.concatenate(rows, axis=0)


def write_image_atomic(path, image, durable=False):
    """Write a PNG/JPEG so that a reader never sees a half-written file (no fsync unless durable)."""
    import imageio.v3 as iio

    return atomic_write_bytes(path, iio.imwrite("<bytes>", image, extension=Path(path).suffix), durable=durable)
