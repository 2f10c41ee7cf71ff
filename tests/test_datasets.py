"""Dataset registry: sizes and defaults, the on-disk layout, CSV search order and helpful missing-data errors."""

import dataclasses

import pytest

from dgan_tf.data.datasets import DATASETS, DatasetNotFoundError, get_dataset


def touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def isolated(config, tmp_path):
    """The config with its annotations/ fallback moved into tmp_path (tests never touch the repo's folder)."""
    return dataclasses.replace(config, fallback_annotations_dir=tmp_path / "annotations")


def test_registry_sizes_and_defaults(tmp_path):
    assert sorted(DATASETS) == ["fashion", "market", "synthetic"]
    market = get_dataset("market", tmp_path)
    assert (market.image_size, market.nn_size, market.data_dir) == ((128, 64), 3, tmp_path)
    fashion = get_dataset("fashion", tmp_path)
    assert (fashion.image_size, fashion.nn_size) == ((256, 256), 5)
    small = get_dataset("synthetic", tmp_path)
    assert (small.image_size, small.nn_size, small.data_dir) == ((128, 64), 3, tmp_path / "synthetic-128x64")
    large = get_dataset("synthetic", tmp_path, image_size="256x256")
    assert (large.image_size, large.nn_size, large.data_dir) == ((256, 256), 5, tmp_path / "synthetic-256x256")
    assert get_dataset("synthetic", tmp_path, image_size=(256, 256)) == large
    # The schedule and pair rules live in the registry too (one source of truth).
    assert (fashion.batch_size_for("full"), fashion.batch_size_for("dsc"), fashion.id_separator) == (2, 4, "last")
    market = get_dataset("market", tmp_path)
    # 89,000: the original's trainer saved its last generator at the start of epoch 89 of 90 (gan/train.py:100-107,
    # submodule a4aa9a3).
    assert (market.iterations, fashion.iterations) == (89_000, 89_000)
    assert (market.distractor_prefixes, market.id_separator) == (("-1", "0000"), "first")
    assert (small.iterations, small.width) == (400, 0.5)


def test_unknown_name_size_and_split_fail_loudly(tmp_path):
    with pytest.raises(ValueError, match=r"\['fashion', 'market', 'synthetic'\].*name='fasion'"):
        get_dataset("fasion")
    with pytest.raises(ValueError, match="Allowed: 128x64. Received: image_size='256x256'"):
        get_dataset("market", image_size="256x256")
    with pytest.raises(ValueError, match="Allowed: 128x64, 256x256"):
        get_dataset("synthetic", image_size=(64, 64))
    with pytest.raises(ValueError, match="Received: image_size='big'"):
        get_dataset("market", image_size="big")
    with pytest.raises(ValueError, match="split='val'"):
        get_dataset("market", tmp_path).images_dir("val")


def test_original_layout_paths(tmp_path):
    market = isolated(get_dataset("market", tmp_path), tmp_path)
    assert market.images_dir("train") == tmp_path / "market-dataset" / "train"
    assert market.annotation_csv("test") == tmp_path / "market-annotation-test.csv"
    assert market.pairs_csv("train") == tmp_path / "market-pairs-train.csv"
    fashion = isolated(get_dataset("fashion", tmp_path), tmp_path)
    assert fashion.images_dir("test") == tmp_path / "fasion-dataset" / "test"  # the original's spelling
    assert fashion.annotation_csv("train") == tmp_path / "fasion-annotation-train.csv"
    synthetic = get_dataset("synthetic", tmp_path)
    assert synthetic.images_dir("train") == tmp_path / "synthetic-128x64" / "synthetic-dataset" / "train"
    assert synthetic.pairs_csv("test") == tmp_path / "synthetic-128x64" / "synthetic-pairs-test.csv"


def test_fashion_spelling_and_csv_search_order(tmp_path):
    fashion = isolated(get_dataset("fashion", tmp_path / "data"), tmp_path)
    (tmp_path / "data" / "fashion-dataset" / "train").mkdir(parents=True)
    assert fashion.images_dir("train") == tmp_path / "data" / "fashion-dataset" / "train"
    fallback = touch(tmp_path / "annotations" / "fashion-pairs-test.csv")
    assert fashion.pairs_csv("test") == fallback  # only in annotations/: used
    beside = touch(tmp_path / "data" / "fasion-pairs-test.csv")
    assert fashion.pairs_csv("test") == beside  # next to the data wins
    market = isolated(get_dataset("market", tmp_path / "data"), tmp_path)
    assert market.annotation_csv("train") == tmp_path / "data" / "market-annotation-train.csv"
    fallback = touch(tmp_path / "annotations" / "market-annotation-train.csv")
    assert market.annotation_csv("train") == fallback


def test_check_present_says_what_is_missing_and_how_to_get_it(tmp_path):
    market = isolated(get_dataset("market", tmp_path), tmp_path)
    with pytest.raises(DatasetNotFoundError) as info:
        market.check_present("train")
    message = str(info.value)
    for expected in ("Market-1501", "prepare_dataset.py market", f"image folder {tmp_path / 'market-dataset' / 'train'}",
                     "market-annotation-train.csv", "market-pairs-train.csv", "Expected layout"):
        assert expected in message, message
    fashion = isolated(get_dataset("fashion", tmp_path), tmp_path)
    with pytest.raises(DatasetNotFoundError, match="DeepFashion.*In-shop.*prepare_dataset.py fashion"):
        fashion.check_present("test")


def test_check_present_passes_or_suggests_make_pairs(tmp_path):
    market = isolated(get_dataset("market", tmp_path), tmp_path)
    touch(tmp_path / "market-dataset" / "test" / "0001_c1.jpg")
    touch(tmp_path / "market-annotation-test.csv")
    with pytest.raises(DatasetNotFoundError, match="make_pairs.py .* --dataset market --sample 12000 --seed 0"):
        market.check_present("test")
    touch(tmp_path / "annotations" / "market-pairs-test.csv")
    market.check_present("test")  # complete (pairs from the annotations/ fallback): no error
