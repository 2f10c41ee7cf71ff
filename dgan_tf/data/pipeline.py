"""tf.data input pipeline: pairs CSV + annotations + image folder -> shuffled batches of pairs.

Each element is a dict of source_image, target_image (B, H, W, 3) in [-1, 1] and
source_keypoints, target_keypoints (B, 18, 2) float32 in (y, x), -1 missing.
Heatmaps, masks and affines are not computed here: the models compute them from the keypoints.
"""

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from dgan_tf.images import ImageReadError, ImageSize, read_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image of the dataset is missing, unreadable or of the wrong size; the message names it."""


class NoPairsError(ValueError):
    """A pair file holds a header but no pairs; the message names it."""


def pair_indices(pairs, table, pairs_path="pairs"):
    """Rows of `pairs` (DataFrame from, to) -> (from_index, to_index) int32 arrays into `table`."""
    index = {name: i for i, name in enumerate(table.names)}
    missing = sorted({n for n in pd_column(pairs, "from") + pd_column(pairs, "to") if n not in index})
    if missing:
        raise ValueError(
            f"{pairs_path}: {len(missing)} image name(s) have no annotation, e.g. {missing[:3]}")
    from_index = np.array([index[n] for n in pairs["from"]], dtype=np.int32)
    to_index = np.array([index[n] for n in pairs["to"]], dtype=np.int32)
    return from_index, to_index


def pd_column(frame, column):
    return [str(v) for v in frame[column].tolist()]


def check_images_exist(images_dir, names):
    """Fail early, naming the file, if an image referenced by the pairs is not on disk."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ImageError(f"image folder not found: {images_dir}")
    on_disk = set(os.listdir(images_dir))
    missing = sorted(set(names) - on_disk)
    if missing:
        raise ImageError(
            f"{len(missing)} image(s) named in the pairs are missing from {images_dir}, "
            f"first: {images_dir / missing[0]}")


def find_bad_image(paths, image_size):
    """Return (path, reason) for the first image that cannot be read or has the wrong size, else None.

    Used to turn a decode failure inside tf.data (which does not name the file) into a clear error.
    """
    image_size = ImageSize.of(image_size)
    for path in paths:
        if not os.path.isfile(path):
            return path, "is missing (it was there when training started)"
        try:
            read_image(path, image_size)
        except ImageReadError as error:
            return path, error.reason
    return None


def _decode_png(contents):
    """PNG bytes -> (H, W, 3) uint8, the pixels dgan_tf.images.read_image gives.

    16-bit grey, which read_image gets at 16 bits, is rounded as it rounds it: round(v / 257). Every other PNG
    goes through TensorFlow's 8-bit decode, which cuts 16-bit colour to its high byte, as Pillow (imageio's
    reader) does before read_image sees it.
    """
    bit_depth, colour_type = tf.strings.substr(contents, 24, 1), tf.strings.substr(contents, 25, 1)  # IHDR

    def grey16():
        wide = tf.cast(tf.io.decode_png(contents, channels=3, dtype=tf.uint16), tf.int32)  # (H, W, 3)
        return tf.cast((wide + 128) // 257, tf.uint8)  # round(v / 257), in integers

    return tf.cond(tf.logical_and(tf.equal(bit_depth, b"\x10"), tf.equal(colour_type, b"\x00")), grey16,
                   lambda: tf.io.decode_png(contents, channels=3))


def decode_image_bytes(contents):
    """An image file's bytes (a scalar string) -> (H, W, 3) uint8, the pixels dgan_tf.images.read_image gives; see
    decode_image. The export's serving_encoded signature decodes its photos with it too."""
    is_png = tf.equal(tf.strings.substr(contents, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE)
    # INTEGER_ACCURATE: the same IDCT as PIL/imageio, so that training, evaluation and other tools see
    # the same pixels (TF's default fast IDCT differs by up to 12 levels).
    return tf.case([
        (tf.io.is_jpeg(contents), lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")),
        (is_png, lambda: _decode_png(contents)),
    ], default=lambda: tf.io.decode_image(contents, channels=3, expand_animations=False))


def decode_image(path, image_size):
    """Read one image file -> (H, W, 3) float32 in [-1, 1], asserting its size (the error names the file).

    The same pixels as dgan_tf.images.read_image (tested): JPEG with the accurate IDCT, PNG through
    _decode_png, other formats (GIF's first frame, 24-bit BMP) as TensorFlow decodes them to 8 bits.
    TensorFlow ignores the palette of an 8-bit BMP (it returns the indices): convert such files to PNG.
    """
    height, width = ImageSize.of(image_size)
    image = decode_image_bytes(tf.io.read_file(path))
    shape = tf.shape(image)
    right_size = tf.reduce_all(tf.equal(shape[:2], tf.constant([height, width])))
    check = tf.debugging.Assert(right_size, [f"image of the wrong size, expected {height}x{width}:", path, shape])
    with tf.control_dependencies([check]):
        image = tf.ensure_shape(tf.identity(image), (height, width, 3))
    return (tf.cast(image, tf.float32) / 255.0 - 0.5) * 2.0


def make_pair_dataset(images_dir, pairs, table, image_size, batch_size, *, shuffle=True, seed=0,
                      repeat=True, drop_remainder=True, shard=(0, 1)):
    """Pairs (DataFrame from, to) + KeypointTable -> tf.data.Dataset of batched pair dicts.

    Reshuffles every pass (seeded), decodes in parallel, prefetches. shard=(index, count): one worker's share of a
    multi-worker job, the pairs index, index + count, ... of each pass's order, len(pairs) // count of them. The
    workers shuffle with the same seed, so that in each pass they see every pair at most once, all taking the same
    number (a pass's few left over pairs differ from pass to pass); sharding before the shuffle instead would put
    neighbouring rows of the pair file, which often share their source image, into the same global batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1. Received: batch_size={batch_size}")
    if len(pairs) == 0:
        raise ValueError("the pair list is empty: nothing to load")
    index, count = shard
    if not 0 <= index < count or count > len(pairs):
        raise ValueError(f"shard {index} of {count} of {len(pairs)} pairs: each of the {count} workers needs at "
                         "least one pair")
    from_index, to_index = pair_indices(pairs, table)
    check_images_exist(images_dir, set(pd_column(pairs, "from")) | set(pd_column(pairs, "to")))
    paths = tf.constant([os.path.join(str(images_dir), n) for n in table.names])  # (N,)
    keypoints = tf.constant(table.keypoints_yx.astype(np.float32))  # (N, 18, 2)

    def load(i, j):
        return {
            "source_image": decode_image(tf.gather(paths, i), image_size),
            "target_image": decode_image(tf.gather(paths, j), image_size),
            "source_keypoints": tf.gather(keypoints, i),
            "target_keypoints": tf.gather(keypoints, j),
        }

    dataset = tf.data.Dataset.from_tensor_slices((from_index, to_index))
    if shuffle:
        dataset = dataset.shuffle(len(from_index), seed=seed, reshuffle_each_iteration=True)
    if count > 1:
        dataset = dataset.shard(count, index).take(len(from_index) // count)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.prefetch(tf.data.AUTOTUNE)


class ClearErrorIterator:
    """Iterates a pair dataset, turning a decode/size failure deep inside TF into an ImageError naming the file."""

    def __init__(self, dataset, image_paths, image_size):
        self._iterator = iter(dataset)
        self._paths = image_paths
        self._image_size = image_size

    def __iter__(self):
        return self

    def __next__(self):
        try:
            return next(self._iterator)
        except tf.errors.OutOfRangeError:
            raise StopIteration from None
        except tf.errors.OpError as error:  # decode failures, and files deleted or made unreadable mid-run
            bad = find_bad_image(self._paths, self._image_size)
            if bad is not None:
                raise ImageError(f"{bad[0]} {bad[1]}") from None
            raise ImageError(f"an image could not be loaded: {error.message.splitlines()[0]}") from None


def dataset_for_split(data, split, batch_size, *, shuffle=True, seed=0, repeat=True, drop_remainder=True,
                      shard=(0, 1), rows=None):
    """DatasetConfig + split -> (ClearErrorIterator-ready dataset, pairs DataFrame, KeypointTable, paths).

    rows: a slice of the pair file's rows to load (one shard of a sharded evaluation); shard: see make_pair_dataset.
    """
    from dgan_tf.data.annotations import read_annotations, read_pairs

    table = read_annotations(data.annotation_csv(split), image_size=data.image_size)
    pairs = read_pairs(data.pairs_csv(split), known_names=set(table.names))
    if len(pairs) == 0:
        raise NoPairsError(f"pair file {data.pairs_csv(split)} has a header but no pairs: nothing to load. "
                         "Write it with scripts/make_pairs.py (it needs images of the same person whose four "
                         "torso joints are present)")
    if rows is not None:
        pairs = pairs.iloc[rows].reset_index(drop=True)
    images_dir = data.images_dir(split)
    dataset = make_pair_dataset(images_dir, pairs, table, data.image_size, batch_size, shuffle=shuffle, seed=seed,
                                repeat=repeat, drop_remainder=drop_remainder, shard=shard)
    used = sorted(set(pd_column(pairs, "from")) | set(pd_column(pairs, "to")))
    paths = [str(Path(images_dir) / n) for n in used]
    return dataset, pairs, table, paths
