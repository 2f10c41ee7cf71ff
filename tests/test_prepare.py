"""Dataset preparation: DeepFashion renaming as a pure function, Market/DeepFashion layout on tiny fake trees."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dgan_tf.data.annotations import write_annotations, write_pairs
from dgan_tf.data.datasets import get_dataset
from dgan_tf.data.prepare import PrepareError, deepfashion_name, detect_naming, prepare_fashion, prepare_market

REPO_ROOT = Path(__file__).resolve().parents[1]


def save_jpg(path, size_hw, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full(size_hw + (3,), value, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("path, defgan, patn", [
    ("img/WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg",
     "fasionWOMENBlousesShirtsid0000000102_1front.jpg", "fashionWOMENBlouses_Shirtsid0000000102_1front.jpg"),
    ("/data/In-shop/img/WOMEN/Blouses_Shirts/id_00003372/03_3_back.jpg",
     "fasionWOMENBlousesShirtsid0000337203_3back.jpg", "fashionWOMENBlouses_Shirtsid0000337203_3back.jpg"),
    ("MEN/Tees_Tanks/id_00007301/04_7_additional.jpg",
     "fasionMENTeesTanksid0000730104_7additional.jpg", "fashionMENTees_Tanksid0000730104_7additional.jpg"),
    ("img\\WOMEN\\Dresses\\id_00006350\\04_4_full.jpg",
     "fasionWOMENDressesid0000635004_4full.jpg", "fashionWOMENDressesid0000635004_4full.jpg"),
])
def test_deepfashion_name_both_namings(path, defgan, patn):
    assert deepfashion_name(path) == defgan
    assert deepfashion_name(path, naming="patn") == patn


def test_deepfashion_name_rejects_other_paths():
    with pytest.raises(ValueError, match="Not a DeepFashion"):
        deepfashion_name("Blouses_Shirts/02_1_front.jpg")
    with pytest.raises(ValueError, match="Not a DeepFashion"):
        deepfashion_name("img/WOMEN/Blouses_Shirts/00000001/02_1_front.jpg")
    with pytest.raises(ValueError, match="naming='pg2'"):
        deepfashion_name("img/WOMEN/Dresses/id_00006350/04_4_full.jpg", naming="pg2")


def test_detect_naming():
    assert detect_naming(["fashionMENDenimid0000008001_1front.jpg"]) == "patn"
    assert detect_naming(["fasionMENDenimid0000008001_1front.jpg"]) == "defgan"
    with pytest.raises(PrepareError, match="Cannot tell"):
        detect_naming(["fasionA_1.jpg", "fashionB_1.jpg"])


# --- Market ----------------------------------------------------------------------------------------


@pytest.fixture
def market_source(tmp_path):
    source = tmp_path / "Market-1501-v15.09.15"
    for name in ("0002_c1s1_000451_03.jpg", "0002_c2s1_000301_01.jpg", "0007_c1s6_028546_01.jpg"):
        save_jpg(source / "bounding_box_train" / name, (128, 64))
    for name in ("0001_c1s1_001051_00.jpg", "-1_c1s1_000401_03.jpg"):
        save_jpg(source / "bounding_box_test" / name, (128, 64))
    (source / "bounding_box_test" / "Thumbs.db").write_bytes(b"\0")
    return source


@pytest.mark.parametrize("mode", ["copy", "hardlink", "symlink"])
def test_prepare_market_lays_out_the_original_folders(tmp_path, market_source, mode):
    data = tmp_path / "data"
    summary = prepare_market(market_source, data, mode=mode)
    assert summary.placed == {"train": 3, "test": 2}
    config = get_dataset("market", data)
    assert sorted(p.name for p in config.images_dir("train").iterdir()) == sorted(
        p.name for p in (market_source / "bounding_box_train").glob("*.jpg"))
    assert sorted(p.name for p in config.images_dir("test").iterdir()) == [
        "-1_c1s1_000401_03.jpg", "0001_c1s1_001051_00.jpg"]  # Thumbs.db left behind
    copied = config.images_dir("test") / "0001_c1s1_001051_00.jpg"
    assert copied.read_bytes() == (market_source / "bounding_box_test" / copied.name).read_bytes()
    assert copied.is_symlink() == (mode == "symlink")
    again = prepare_market(market_source, data, mode=mode)
    assert again.placed == {"train": 0, "test": 0} and again.already_present == 5


def test_prepare_market_reports_bad_sources(tmp_path, market_source):
    with pytest.raises(PrepareError, match="missing bounding_box_train, bounding_box_test"):
        prepare_market(tmp_path / "nowhere", tmp_path / "data")
    save_jpg(market_source / "bounding_box_test" / "0003_c1s1_000001_01.jpg", (256, 128))
    with pytest.raises(PrepareError, match=r"not 128x64 \(H x W\) and nothing resizes.*0003_c1s1_000001_01.jpg is 256x128"):
        prepare_market(market_source, tmp_path / "data")
    assert not (tmp_path / "data" / "market-dataset").exists()  # checked before copying anything
    (market_source / "bounding_box_test" / "0003_c1s1_000001_01.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(PrepareError, match="0003_c1s1_000001_01.jpg is not a decodable image"):
        prepare_market(market_source, tmp_path / "data")


def test_prepare_script_fails_cleanly(tmp_path):
    done = subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "prepare_dataset.py"), "market",
                           "--source", str(tmp_path / "nowhere"), "--data-root", str(tmp_path / "data")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "bounding_box_train" in done.stderr


# --- DeepFashion -----------------------------------------------------------------------------------


FASHION_PATHS = {
    "WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg": "train",
    "WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg": "train",
    "MEN/Tees_Tanks/id_00007301/04_7_additional.jpg": "test",
    "MEN/Denim/id_00000080/01_1_front.jpg": None,  # in no annotation file
}


def fashion_tree(tmp_path, naming):
    source = tmp_path / "In-shop" / "img"
    for relative in FASHION_PATHS:
        save_jpg(source / relative, (256, 256))
    (source / "MEN" / "notes.jpg").write_bytes(b"")  # not the DeepFashion layout
    csvs = tmp_path / "csvs"
    for split in ("train", "test"):
        names = [deepfashion_name(p, naming) for p, s in FASHION_PATHS.items() if s == split]
        if split == "test":
            names.append(deepfashion_name("WOMEN/Dresses/id_00006350/04_4_full.jpg", naming))  # no image
        write_annotations(csvs / f"fasion-annotation-{split}.csv", names, np.full((len(names), 18, 2), 9))
    write_pairs(csvs / "fashion-pairs-test.csv", pd.DataFrame({"from": ["a"], "to": ["b"]}))
    return source, csvs


@pytest.mark.parametrize("naming", ["defgan", "patn"])
def test_prepare_fashion_renames_and_splits_by_annotation(tmp_path, naming):
    source, csvs = fashion_tree(tmp_path, naming)
    data = tmp_path / "data"
    summary = prepare_fashion(source, csvs, data)  # naming detected from the CSVs
    assert summary.placed == {"train": 2, "test": 1}
    config = get_dataset("fashion", data)
    for relative, split in FASHION_PATHS.items():
        placed = [config.images_dir(s) / deepfashion_name(relative, naming) for s in ("train", "test")]
        assert [p.exists() for p in placed] == [split == "train", split == "test"]
    assert [Path(p).name for p in summary.unlisted] == ["01_1_front.jpg"]
    assert [Path(p).name for p in summary.unrecognised] == ["notes.jpg"]
    assert summary.missing == [deepfashion_name("WOMEN/Dresses/id_00006350/04_4_full.jpg", naming)]
    assert config.annotation_csv("test") == data / "fasion-annotation-test.csv"  # CSVs copied beside the data
    assert config.pairs_csv("test") == data / "fashion-pairs-test.csv"


def test_prepare_fashion_wrong_naming_or_size_is_reported(tmp_path):
    source, csvs = fashion_tree(tmp_path, "patn")
    with pytest.raises(PrepareError, match="naming='defgan'"):
        prepare_fashion(source, csvs, tmp_path / "data", naming="defgan")
    save_jpg(source / "WOMEN/Blouses_Shirts/id_00000001/02_2_side.jpg", (1101, 750))
    with pytest.raises(PrepareError, match="02_2_side.jpg is 1101x750"):
        prepare_fashion(source, csvs, tmp_path / "data")
