"""tf.data input pipeline: batches, value range, reshuffling, and clear errors for bad images."""

import numpy as np
import pandas as pd
import pytest

from dgan_tf.data.annotations import read_annotations, write_annotations
from dgan_tf.data.pipeline import ClearErrorIterator, ImageError, make_pair_dataset

SIZE = (16, 8)


@pytest.fixture
def tiny_folder(tmp_path, rng):
    """Six 16x8 images of two people, their annotations and all same-person pairs."""
    import imageio.v3 as iio

    names = [f"{p}_{k}.png" for p in ("0001", "0002") for k in range(3)]
    images = {}
    for i, name in enumerate(names):
        image = np.full(SIZE + (3,), 40 * i, np.uint8)
        image[0, 0] = (255, 0, 0)
        iio.imwrite(tmp_path / name, image)
        images[name] = image
    keypoints = rng.integers(0, 8, size=(len(names), 18, 2)).astype(np.int32)
    keypoints[:, 3] = -1
    write_annotations(tmp_path / "ann.csv", names, keypoints)
    pairs = pd.DataFrame([(a, b) for a in names for b in names if a != b and a[:4] == b[:4]],
                         columns=["from", "to"])
    table = read_annotations(tmp_path / "ann.csv", image_size=SIZE)
    return tmp_path, pairs, table, images


def test_batches_hold_pairs_in_minus_one_to_one(tiny_folder):
    folder, pairs, table, images = tiny_folder
    dataset = make_pair_dataset(folder, pairs, table, SIZE, batch_size=4, shuffle=False, repeat=False,
                                drop_remainder=False)
    batches = list(dataset)
    assert sum(len(b["source_image"]) for b in batches) == len(pairs)
    first = batches[0]
    assert first["source_image"].shape == (4, 16, 8, 3) and first["target_keypoints"].shape == (4, 18, 2)
    a, b = pairs.iloc[0]
    expected = (images[a].astype(np.float32) / 255.0 - 0.5) * 2.0
    np.testing.assert_allclose(first["source_image"][0].numpy(), expected, atol=1e-6)
    np.testing.assert_array_equal(first["target_keypoints"][0].numpy(), table.get(b).astype(np.float32))
    assert first["source_image"].numpy().min() >= -1.0 and first["source_image"].numpy().max() <= 1.0


def test_reshuffles_every_pass_and_is_seeded(tiny_folder):
    folder, pairs, table, _ = tiny_folder

    def passes(seed):
        dataset = make_pair_dataset(folder, pairs, table, SIZE, batch_size=len(pairs), seed=seed)
        it = iter(dataset)
        return [next(it)["source_keypoints"].numpy() for _ in range(3)]

    first, again = passes(7), passes(7)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)  # deterministic for a seed
    assert not np.array_equal(first[0], first[1]) or not np.array_equal(first[1], first[2])  # reshuffled


def test_missing_image_is_named(tiny_folder):
    folder, pairs, table, _ = tiny_folder
    (folder / "0002_1.png").unlink()
    with pytest.raises(ImageError, match="0002_1.png"):
        make_pair_dataset(folder, pairs, table, SIZE, batch_size=2)


@pytest.mark.parametrize("damage", ["corrupt", "wrong_size"])
def test_bad_image_error_names_the_file(tiny_folder, damage):
    import imageio.v3 as iio

    folder, pairs, table, _ = tiny_folder
    bad = folder / "0001_2.png"
    if damage == "corrupt":
        bad.write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    else:
        iio.imwrite(bad, np.zeros((20, 8, 3), np.uint8))
    dataset = make_pair_dataset(folder, pairs, table, SIZE, batch_size=len(pairs), shuffle=False, repeat=False)
    paths = [str(folder / n) for n in table.names]
    with pytest.raises(ImageError, match="0001_2.png"):
        list(ClearErrorIterator(dataset, paths, SIZE))


def test_empty_pairs_and_bad_batch_size_are_rejected(tiny_folder):
    folder, pairs, table, _ = tiny_folder
    with pytest.raises(ValueError, match="batch_size"):
        make_pair_dataset(folder, pairs, table, SIZE, batch_size=0)
    with pytest.raises(ValueError, match="empty"):
        make_pair_dataset(folder, pairs.iloc[:0], table, SIZE, batch_size=2)
