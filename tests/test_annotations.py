"""Annotation and pair CSV I/O: real files parse, round trips, and every bad input names its file and line."""

import json

import numpy as np
import pandas as pd
import pytest

from dgan_tf.data.annotations import (
    AnnotationError, KeypointTable, read_annotations, read_pairs, write_annotations, write_pairs,
)

HEADER = "name:keypoints_y:keypoints_x"
GOOD_Y = [10, 20, 21, 40, 55, 21, 40, 55, 60, 80, 100, 60, 80, 100, 8, 8, 9, 9]
GOOD_X = [30, 30, 20, 18, 17, 40, 42, 44, 25, 25, 25, 35, 35, 35, 28, 32, 26, 34]
MISSING = [-1] * 18


def good_row(name, ys=GOOD_Y, xs=GOOD_X, space=" "):
    return f"{name}:{space}{json.dumps(ys)}:{space}{json.dumps(xs)}"


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n")
    return path


def original_reader(path):
    """The original's reader: pandas read_csv(sep=':') then json.loads of each coordinate field."""
    df = pd.read_csv(path, sep=":")
    return {row["name"]: np.stack([json.loads(row["keypoints_y"]), json.loads(row["keypoints_x"])], axis=-1)
            for _, row in df.iterrows()}


# --- valid input -----------------------------------------------------------------------------------


def test_reads_both_spacings_blank_lines_and_missing_joints(tmp_path):
    path = write_lines(tmp_path / "a.csv", [HEADER, good_row("a_1.jpg"), "", good_row("b_1.jpg", space=""),
                                            good_row("c_1.jpg", MISSING, MISSING)])
    table = read_annotations(path, image_size=(128, 64))
    assert table.names == ("a_1.jpg", "b_1.jpg", "c_1.jpg")
    assert table.keypoints_yx.shape == (3, 18, 2) and table.keypoints_yx.dtype == np.int32
    np.testing.assert_array_equal(table.get("a_1.jpg"), np.stack([GOOD_Y, GOOD_X], axis=-1))
    assert (table.get("c_1.jpg") == -1).all()
    assert table.index_of("b_1.jpg") == 1 and len(table) == 3 and "b_1.jpg" in table
    with pytest.raises(KeyError, match="nope.jpg"):
        table.index_of("nope.jpg")


def test_keypoint_table_is_read_only_and_validates_shape():
    table = KeypointTable(("a",), np.zeros((1, 18, 2), np.int32))
    with pytest.raises(ValueError):
        table.keypoints_yx[0, 0, 0] = 5
    with pytest.raises(ValueError, match="shape"):
        KeypointTable(("a", "b"), np.zeros((1, 18, 2)))
    with pytest.raises(ValueError, match="Duplicate"):
        KeypointTable(("a", "a"), np.zeros((2, 18, 2)))


def test_write_then_read_round_trip_and_original_reader(tmp_path, rng):
    names = [f"{i:04d}_c1s1_{i:06d}_01.jpg" for i in range(20)]
    keypoints = np.stack([rng.integers(0, 128, (20, 18)), rng.integers(0, 64, (20, 18))], axis=-1)
    keypoints[3, 5] = -1
    keypoints[7] = -1
    path = tmp_path / "out" / "market-annotation-test.csv"
    write_annotations(path, names, keypoints)
    assert path.read_text().splitlines()[0] == HEADER
    assert path.read_text().splitlines()[1].startswith(f"{names[0]}: [{keypoints[0, 0, 0]}, {keypoints[0, 1, 0]}, ")
    table = read_annotations(path, image_size=(128, 64))
    assert table.names == tuple(names)
    np.testing.assert_array_equal(table.keypoints_yx, keypoints)
    by_original = original_reader(path)
    assert list(by_original) == names
    for i, name in enumerate(names):
        np.testing.assert_array_equal(by_original[name], keypoints[i])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_write_rejects_bad_input_and_keeps_the_old_file(tmp_path):
    path = tmp_path / "a.csv"
    write_annotations(path, ["a.jpg"], np.zeros((1, 18, 2), np.int64))
    before = path.read_text()
    with pytest.raises(ValueError, match="integers"):
        write_annotations(path, ["a.jpg"], np.full((1, 18, 2), 0.5))
    with pytest.raises(ValueError, match="':'"):
        write_annotations(path, ["a:b.jpg"], np.zeros((1, 18, 2), np.int64))
    with pytest.raises(ValueError, match="shape"):
        write_annotations(path, ["a.jpg", "b.jpg"], np.zeros((1, 18, 2), np.int64))
    half = np.zeros((1, 18, 2), np.int64)
    half[0, 4, 0] = -1
    with pytest.raises(ValueError, match="only one coordinate"):
        write_annotations(path, ["a.jpg"], half)
    assert path.read_text() == before


# --- bad input: the message names the file and the line --------------------------------------------


BAD_ROWS = {
    "too_many_fields": (good_row("x.jpg") + ": [1]", "expected 3 fields, found 4"),
    "too_few_fields": (f"x.jpg: {json.dumps(GOOD_Y)}", "keypoints_x is empty"),
    "not_json": ("x.jpg: [1, 2,: [3]", "not a JSON list"),
    "not_a_list": ("x.jpg: 5: 7", "not a list"),
    "wrong_joint_count": (good_row("x.jpg", GOOD_Y[:17]), "17 values, expected 18"),
    "float_value": (good_row("x.jpg", GOOD_Y[:3] + [3.5] + GOOD_Y[4:]), "is not an integer"),
    "integral_float": (good_row("x.jpg", GOOD_Y[:3] + [3.0] + GOOD_Y[4:]), "is not an integer"),
    "string_value": (good_row("x.jpg", GOOD_Y[:3] + ["3"] + GOOD_Y[4:]), "is not an integer"),
    "bool_value": (good_row("x.jpg", GOOD_Y[:3] + [True] + GOOD_Y[4:]), "is not an integer"),
    "below_minus_one": (good_row("x.jpg", GOOD_Y[:3] + [-2] + GOOD_Y[4:]), "out of range"),
    "outside_rows": (good_row("x.jpg", GOOD_Y[:3] + [128] + GOOD_Y[4:]), "outside the 128x64 image"),
    "outside_cols": (good_row("x.jpg", xs=GOOD_X[:3] + [64] + GOOD_X[4:]), "outside the 128x64 image"),
    "half_missing": (good_row("x.jpg", GOOD_Y[:3] + [-1] + GOOD_Y[4:]), "only one coordinate missing"),
    "duplicate_name": (good_row("a.jpg"), "duplicate image name 'a.jpg' (first on line 2)"),
    "empty_name": (good_row(""), "empty image name"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_bad_row_names_file_and_line(tmp_path, case):
    row, expected = BAD_ROWS[case]
    path = write_lines(tmp_path / f"{case}.csv", [HEADER, good_row("a.jpg"), good_row("b.jpg"), row])
    with pytest.raises(AnnotationError) as info:
        read_annotations(path, image_size=(128, 64))
    message = str(info.value)
    assert str(path) in message and "line 4:" in message and expected in message, message
    assert info.value.lines == (4,)


def test_several_bad_rows_are_reported_together(tmp_path):
    bad = good_row("x.jpg", GOOD_Y[:17])
    lines = [HEADER, good_row("a.jpg")] + [bad.replace("x.jpg", f"x{i}.jpg") for i in range(8)]
    path = write_lines(tmp_path / "many.csv", lines)
    with pytest.raises(AnnotationError) as info:
        read_annotations(path)
    message = str(info.value)
    assert all(f"line {n}:" in message for n in range(3, 8)) and "line 8:" not in message
    assert "and 3 more bad rows" in message and "\n" not in message
    assert info.value.lines == tuple(range(3, 11))


@pytest.mark.parametrize("content, expected", [
    (None, "not found"),
    ("", "is empty"),
    ("\n  \n", "is empty"),
    ("name,keypoints_y,keypoints_x\n", "line 1: wrong header"),
    ("name:y:x\n" + good_row("a.jpg") + "\n", "line 1: wrong header"),
    (HEADER + "\n", "no annotation rows"),
])
def test_bad_file_names_the_file(tmp_path, content, expected):
    path = tmp_path / "bad.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(AnnotationError, match=expected) as info:
        read_annotations(path)
    assert str(path) in str(info.value)


def test_image_size_argument_is_validated(tmp_path):
    path = write_lines(tmp_path / "a.csv", [HEADER, good_row("a.jpg")])
    with pytest.raises(ValueError, match="Received: image_size"):
        read_annotations(path, image_size=(128,))


# --- pairs -----------------------------------------------------------------------------------------


def test_pairs_round_trip(tmp_path):
    pairs = pd.DataFrame({"from": ["a_1.jpg", "b,1.jpg"], "to": ["a_2.jpg", "b_2.jpg"]})
    path = tmp_path / "pairs.csv"
    write_pairs(path, pairs)
    assert path.read_text().splitlines()[0] == "from,to"
    back = read_pairs(path, known_names={"a_1.jpg", "a_2.jpg", "b,1.jpg", "b_2.jpg"})
    assert back.to_dict("list") == pairs.to_dict("list")
    assert pd.read_csv(path).to_dict("list") == pairs.to_dict("list")  # the original's plain reader


@pytest.mark.parametrize("lines, expected, line", [
    (["a.jpg,b.jpg"], "line 1: wrong header", 1),
    (["from,to", "a.jpg,b.jpg", "a.jpg,b.jpg,c.jpg"], "expected 2 fields, found 3", 3),
    (["from,to", "a.jpg,b.jpg", "a.jpg"], "empty 'to' name", 3),
    (["from,to", ",b.jpg"], "empty 'from' name", 2),
    (["from,to", "a.jpg,b.jpg", "a.jpg,zz.jpg"], "'to' image 'zz.jpg' has no annotation", 3),
])
def test_bad_pairs_name_file_and_line(tmp_path, lines, expected, line):
    path = write_lines(tmp_path / "pairs.csv", lines)
    with pytest.raises(AnnotationError) as info:
        read_pairs(path, known_names=["a.jpg", "b.jpg"])
    message = str(info.value)
    assert str(path) in message and expected in message and f"line {line}:" in message, message


def test_write_pairs_needs_both_columns(tmp_path):
    with pytest.raises(ValueError, match="'from' and 'to'"):
        write_pairs(tmp_path / "p.csv", pd.DataFrame({"from": ["a"]}))


# --- the real files --------------------------------------------------------------------------------


REAL_ANNOTATIONS = {
    "market-annotation-train.csv": ((128, 64), 12936),
    "market-annotation-test.csv": ((128, 64), 19732),
    "fasion-annotation-test.csv": ((256, 256), 4038),
}


@pytest.mark.parametrize("file_name", sorted(REAL_ANNOTATIONS))
def test_real_annotation_files_parse(annotations_real, file_name):
    image_size, rows = REAL_ANNOTATIONS[file_name]
    table = read_annotations(annotations_real / file_name, image_size=image_size)
    assert len(table) == rows
    by_original = pd.read_csv(annotations_real / file_name, sep=":")
    i = rows // 2
    np.testing.assert_array_equal(
        table.get(by_original["name"][i]),
        np.stack([json.loads(by_original["keypoints_y"][i]), json.loads(by_original["keypoints_x"][i])], axis=-1))


@pytest.mark.parametrize("pairs_file, annotation_file, rows", [
    ("market-pairs-test.csv", "market-annotation-test.csv", 12000),
    ("fashion-pairs-test.csv", "fasion-annotation-test.csv", 8570),
])
def test_real_pair_files_name_annotated_images(annotations_real, pairs_file, annotation_file, rows):
    names = read_annotations(annotations_real / annotation_file).names
    pairs = read_pairs(annotations_real / pairs_file, known_names=names)
    assert list(pairs.columns) == ["from", "to"] and len(pairs) == rows
