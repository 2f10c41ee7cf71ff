"""Pair generation: id rules, validity, the original's order and sampling, counts on the real files, the script."""

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dgan_tf.data.annotations import KeypointTable, read_annotations, read_pairs, write_annotations
from dgan_tf.data.pairs import item_id, make_pairs, valid_image_mask

REPO_ROOT = Path(__file__).resolve().parents[1]


def table_of(names, valid=None):
    """A KeypointTable whose rows have a full torso unless valid[i] is False."""
    keypoints = np.full((len(names), 18, 2), 5, np.int32)
    for i, ok in enumerate(valid or [True] * len(names)):
        if not ok:
            keypoints[i, 8] = -1  # Rhip missing
    return KeypointTable(tuple(names), keypoints)


def original_make_pairs(names, ids):
    """The original's loop: ids by first appearance, itertools.permutations within each."""
    rows = []
    for person in pd.unique(pd.Series(ids)):
        members = [n for n, i in zip(names, ids) if i == person]
        rows += list(itertools.permutations(members, 2))
    return rows


def test_item_id_rules():
    assert item_id("0002_c1s1_000451_03.jpg", "market") == "0002"
    assert item_id("-1_c2s3_095277_02.jpg", "market") == "-1"
    assert item_id("00017_3.jpg", "synthetic") == "00017"
    # Def-GAN naming (one `_`) and PATN naming (category keeps its `_`): last `_` is right for both.
    assert item_id("fasionWOMENBlousesShirtsid0000635004_1front.jpg", "fashion") == "fasionWOMENBlousesShirtsid0000635004"
    assert item_id("fashionWOMENBlouses_Shirtsid0000337203_3back.jpg", "fashion") == "fashionWOMENBlouses_Shirtsid0000337203"
    with pytest.raises(ValueError, match="Expected one of"):
        item_id("a_b.jpg", "fasion")


def test_valid_image_mask():
    names = ["0001_a.jpg", "0001_b.jpg", "-1_c.jpg", "0000_d.jpg", "00010_e.jpg"]
    table = table_of(names, [True, False, True, True, True])
    np.testing.assert_array_equal(valid_image_mask(names, table.keypoints_yx, "market"), [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(valid_image_mask(names, table.keypoints_yx, "synthetic"), [1, 0, 1, 1, 1])
    keypoints = np.array(table.keypoints_yx)
    keypoints[0, 11, 1] = -1  # any missing coordinate of a torso joint invalidates
    keypoints[4, 3] = -1  # a missing elbow does not
    np.testing.assert_array_equal(valid_image_mask(names, keypoints, "fashion"), [0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="shape"):
        valid_image_mask(names[:2], keypoints, "market")


def test_make_pairs_matches_the_original_loop(rng):
    ids = rng.integers(1, 8, 60)
    names = [f"{i:04d}_{k:03d}.jpg" for k, i in enumerate(ids)]
    valid = list(rng.random(60) > 0.2)
    pairs = make_pairs(table_of(names, valid), "market")
    kept = [(n, f"{i:04d}") for n, i, ok in zip(names, ids, valid) if ok]
    expected = original_make_pairs([n for n, _ in kept], [i for _, i in kept])
    assert list(pairs.columns) == ["from", "to"]
    assert list(zip(pairs["from"], pairs["to"])) == expected
    assert (pairs["from"] != pairs["to"]).all()


def test_sampling_is_seeded_without_replacement():
    names = [f"{i % 5 + 1:04d}_{i:03d}.jpg" for i in range(40)]  # 5 ids x 8 images -> 280 pairs
    table = table_of(names)
    everything = make_pairs(table, "market")
    assert len(everything) == 280
    sample = make_pairs(table, "market", sample=50, seed=0)
    assert len(sample) == 50 and not sample.duplicated().any()
    assert set(map(tuple, sample.to_numpy())) <= set(map(tuple, everything.to_numpy()))
    assert sample.equals(make_pairs(table, "market", sample=50, seed=0))
    assert not sample.equals(make_pairs(table, "market", sample=50, seed=1))
    assert sample.equals(everything.sample(n=50, random_state=0).reset_index(drop=True))  # the original's call
    assert len(make_pairs(table, "market", sample=10_000)) == 280
    with pytest.raises(ValueError, match="Received: sample=0"):
        make_pairs(table, "market", sample=0)


# --- the real files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_tables(annotations_real):
    return {
        "market-train": read_annotations(annotations_real / "market-annotation-train.csv", (128, 64)),
        "market-test": read_annotations(annotations_real / "market-annotation-test.csv", (128, 64)),
        "fashion-test": read_annotations(annotations_real / "fasion-annotation-test.csv", (256, 256)),
    }


def test_market_train_pair_count(real_tables):
    table = real_tables["market-train"]
    assert valid_image_mask(table.names, table.keypoints_yx, "market").sum() == 12_116
    assert len(make_pairs(table, "market")) == 263_632


def test_market_test_sample_reproduces_the_published_pairs(real_tables, annotations_real):
    published = read_pairs(annotations_real / "market-pairs-test.csv")
    ours = make_pairs(real_tables["market-test"], "market", sample=12_000, seed=0)
    assert ours.equals(published)  # row for row, in order


def test_fashion_test_pairs_equal_the_published_set(real_tables, annotations_real):
    table = real_tables["fashion-test"]
    published = read_pairs(annotations_real / "fashion-pairs-test.csv", known_names=table.names)
    ours = make_pairs(table, "fashion")
    assert valid_image_mask(table.names, table.keypoints_yx, "fashion").sum() == 3_264
    assert len(ours) == 8_570
    assert set(zip(ours["from"], ours["to"])) == set(zip(published["from"], published["to"]))
    assert all(item_id(a, "fashion") == item_id(b, "fashion") for a, b in published.to_numpy())


# --- the script ------------------------------------------------------------------------------------


def run_script(*args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "scripts" / "make_pairs.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)


def test_make_pairs_script_end_to_end(tmp_path):
    names = [f"{i % 3 + 1:04d}_{i:03d}.jpg" for i in range(9)]  # 3 ids x 3 images -> 18 pairs
    write_annotations(tmp_path / "ann.csv", names, np.full((9, 18, 2), 5))
    done = run_script(tmp_path / "ann.csv", "--out", tmp_path / "pairs.csv", "--dataset", "market")
    assert done.returncode == 0, done.stderr
    assert "Wrote 18 pairs" in done.stdout
    assert len(read_pairs(tmp_path / "pairs.csv", known_names=names)) == 18

    (tmp_path / "bad.csv").write_text("name:keypoints_y:keypoints_x\na.jpg: [1]: [2]\n")
    done = run_script(tmp_path / "bad.csv", "--out", tmp_path / "p2.csv", "--dataset", "market")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]  # TF's start-up lines aside
    assert len(errors) == 1 and "bad.csv" in errors[0] and "line 2" in errors[0], done.stderr
    assert not (tmp_path / "p2.csv").exists()

    done = run_script(tmp_path / "ann.csv", "--out", tmp_path / "p3.csv", "--dataset", "market", "--sample", "-3")
    assert done.returncode == 2 and "Traceback" not in done.stderr and "--sample" in done.stderr
