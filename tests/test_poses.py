"""POSE arguments: annotation CSV rows and files, OpenPose JSON (COCO-18, BODY_25), folders; errors name the file."""

import json

import numpy as np
import pytest

from dgan_tf.data.annotations import write_annotations
from dgan_tf.inference import poses
from dgan_tf.inference.poses import PoseError
from tests.serving_helpers import STANDING_POSE, openpose_document, write_openpose


@pytest.fixture
def annotation_csv(tmp_path):
    second = STANDING_POSE.astype(np.int64) + 2
    second[14:] = -1
    path = tmp_path / "market-annotation-test.csv"
    write_annotations(path, ["a_0.jpg", "b_1.jpg"], np.stack([STANDING_POSE.astype(np.int64), second]))
    return path


def test_a_csv_row_and_a_whole_csv(annotation_csv):
    pose = poses.read_pose(f"{annotation_csv}:b_1.jpg")
    assert pose.keypoints_yx.dtype == np.float32 and pose.keypoints_yx.shape == (18, 2)
    np.testing.assert_array_equal(pose.keypoints_yx[:14], STANDING_POSE[:14] + 2)
    assert np.all(pose.keypoints_yx[14:] == -1)
    assert pose.label == "b_1" and pose.origin == f"{annotation_csv}:b_1.jpg"
    sequence = poses.read_poses(annotation_csv)
    assert [p.label for p in sequence] == ["a_0", "b_1"]


def test_a_csv_row_that_is_not_there_names_the_file(annotation_csv):
    with pytest.raises(PoseError, match=r"market-annotation-test.csv has no row named 'c.jpg' \(2 rows: a_0.jpg"):
        poses.read_pose(f"{annotation_csv}:c.jpg")
    with pytest.raises(PoseError, match="pose file not found: .*nothing.csv"):
        poses.read_pose(f"{annotation_csv.parent / 'nothing.csv'}:a_0.jpg")
    with pytest.raises(PoseError, match="holds 2 poses; the source needs one"):
        poses.read_pose(annotation_csv)


@pytest.mark.parametrize("body25", [False, True], ids=["coco18", "body25"])
def test_openpose_json_to_our_18_joints_in_y_x(tmp_path, body25):
    pose = STANDING_POSE.copy()
    pose[15] = -1  # undetected: OpenPose writes 0, 0, 0
    path = write_openpose(tmp_path / "frame_000000000012_keypoints.json", [pose], body25=body25)
    read = poses.read_pose(path)
    np.testing.assert_array_equal(read.keypoints_yx, pose)
    assert read.label == "frame_000000000012_keypoints" and read.origin == str(path)


def test_openpose_confidence_threshold_and_the_most_confident_person(tmp_path):
    weak, strong = STANDING_POSE + 1, STANDING_POSE + 5
    document = openpose_document([weak, strong], confidences=[0.3, 0.6])
    flat = document["people"][1]["pose_keypoints_2d"]
    flat[3 * 4 + 2] = 0.05  # the right wrist of the chosen person is below the threshold
    path = tmp_path / "two.json"
    path.write_text(json.dumps(document))
    read = poses.read_pose(path, confidence=0.1)
    expected = strong.copy()
    expected[4] = -1
    np.testing.assert_array_equal(read.keypoints_yx, expected)
    assert "person 1 of 2" in read.origin
    np.testing.assert_array_equal(poses.read_pose(path, confidence=0.01).keypoints_yx, strong)


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not a readable JSON file"),
    ('{"people": [{"pose_keypoints_2d": [1, 2, 3]}]}', r"has 3 values; expected 54 \(COCO-18\) or 75 \(BODY_25\)"),
    ('{"people": []}', "OpenPose found no person"),
    ('[1, 2]', "is not an OpenPose keypoint file"),
    ('{"people": [{"face_keypoints_2d": []}]}', "person 0: no pose_keypoints_2d list"),
    ('{"people": [{"pose_keypoints_2d": ' + json.dumps(["a"] * 54) + '}]}', "must hold numbers"),
])
def test_wrong_json_names_the_file(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(PoseError, match=message) as error:
        poses.read_pose(path)
    assert str(path) in str(error.value)


def test_normalised_openpose_coordinates_are_refused(tmp_path):
    path = write_openpose(tmp_path / "norm.json", [STANDING_POSE / 200.0])
    with pytest.raises(PoseError, match="normalised.*--keypoint_scale 0"):
        poses.read_pose(path)


def test_a_folder_is_a_sequence_in_natural_order(tmp_path):
    for index in (10, 2, 1):
        write_openpose(tmp_path / f"walk_{index}_keypoints.json", [STANDING_POSE + index])
    sequence = poses.read_poses(tmp_path)
    assert [p.label for p in sequence] == ["walk_1_keypoints", "walk_2_keypoints", "walk_10_keypoints"]
    np.testing.assert_array_equal(sequence[2].keypoints_yx, STANDING_POSE + 10)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PoseError, match=r"pose folder .*empty holds no \*.json"):
        poses.read_poses(empty)


def test_missing_torso_joints_are_named_with_the_file(tmp_path):
    pose = STANDING_POSE.copy()
    pose[[2, 11]] = -1
    path = write_openpose(tmp_path / "no_torso.json", [pose])
    read = poses.read_pose(path)
    with pytest.raises(PoseError, match=r"target pose .*no_torso.json has no r_shoulder, l_hip: .*all four torso"):
        poses.require_torso(read, "target pose")


def test_fill_missing_from_the_previous_pose():
    first = poses.Pose(STANDING_POSE.copy(), "a", "a")
    second_keypoints = STANDING_POSE + 1
    second_keypoints[[3, 8]] = -1
    filled = poses.fill_missing_from_previous([first, poses.Pose(second_keypoints, "b", "b")])
    np.testing.assert_array_equal(filled[1].keypoints_yx[[3, 8]], STANDING_POSE[[3, 8]])
    np.testing.assert_array_equal(filled[1].keypoints_yx[0], STANDING_POSE[0] + 1)


def test_unknown_pose_arguments():
    with pytest.raises(PoseError, match="pose file not found: nowhere.json"):
        poses.read_poses("nowhere.json")
