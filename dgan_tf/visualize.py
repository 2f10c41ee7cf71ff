"""Pictures for people: skeleton drawings, sample grids (source | target pose | generated | target) and strips.

numpy only (imageio where files are written): the keypoint estimator's environment (.venv-pose) draws with it too.
"""

import math
from pathlib import Path

import numpy as np

from dgan_tf.files import atomic_write_bytes
from dgan_tf.geometry.keypoints import SKELETON
from dgan_tf.images import serving_uint8, stored_pixels

# One colour per skeleton edge, cycling through a readable palette.
_PALETTE = np.array([
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
    (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
    (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170),
], dtype=np.uint8)


def _paint(canvas, rows, columns, colour):
    """Set the pixels (rows, columns) that lie inside the canvas."""
    height, width = canvas.shape[:2]
    inside = (rows >= 0) & (rows < height) & (columns >= 0) & (columns < width)
    canvas[rows[inside], columns[inside]] = colour


def _segment(a, b, thickness):
    """Pixels (rows, columns) of the segment a -> b ((y, x) each), sampled every half pixel, `thickness` wide."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    steps = np.linspace(0.0, 1.0, int(math.ceil(2 * np.abs(b - a).max())) + 2)[:, None]
    points = np.round(a + (b - a) * steps).astype(np.int64)  # (n, 2)
    offsets = np.arange(thickness) - (thickness - 1) // 2
    rows = (points[:, None, None, 0] + offsets[None, :, None]).ravel()
    columns = (points[:, None, None, 1] + offsets[None, None, :]).ravel()
    return rows, columns


def draw_pose(keypoints_yx, image_size, background=None, radius=2, thickness=1):
    """Keypoints (18, 2) (y, x), -1 missing -> (H, W, 3) uint8 skeleton drawing, over `background` when given."""
    height, width = image_size
    canvas = np.zeros((height, width, 3), np.uint8) if background is None else np.array(background, np.uint8)
    keypoints = np.asarray(keypoints_yx)
    visible = np.all(keypoints >= 0, axis=-1)
    for colour, (a, b) in zip(_PALETTE, SKELETON):
        if visible[a] and visible[b]:
            _paint(canvas, *_segment(keypoints[a], keypoints[b], thickness), colour)
    rows, columns = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    disk = rows ** 2 + columns ** 2 <= radius ** 2 + radius  # a round dot, as skimage.draw.disk draws it
    for j in np.flatnonzero(visible):
        y, x = np.round(keypoints[j]).astype(np.int64)
        _paint(canvas, y + rows[disk], x + columns[disk], _PALETTE[j % len(_PALETTE)])
    return canvas


def overlay_scale(image_size):
    """(radius, thickness) of a skeleton drawn over a photo of `image_size`: 2 and 1 at 128x64, more on larger ones."""
    unit = max(1, round(min(image_size) / 128))
    return 2 * unit, unit


def strip(panels):
    """Images of one height, side by side."""
    return np.concatenate([np.asarray(panel, np.uint8) for panel in panels], axis=1)


def upscaled_nearest(image, min_height):
    """The image enlarged by the smallest integer factor (nearest neighbour) that makes it at least `min_height`
    pixels tall: pixels stay sharp squares."""
    factor = max(1, math.ceil(min_height / image.shape[0]))
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


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


def write_gif_atomic(path, frames, fps):
    """An animated GIF of (H, W, 3) uint8 frames, looping, `fps` frames per second; written atomically."""
    import imageio.v3 as iio

    data = iio.imwrite("<bytes>", np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return atomic_write_bytes(path, data, durable=False)
