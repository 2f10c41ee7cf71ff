"""Keypoint estimation: the BlazePose -> COCO-18 mapping (no mediapipe needed), the annotation run around it,
the command line's bad arguments, and the estimator itself on real photos through the pose environment."""

import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dgan_tf.data.annotations import read_annotations, write_annotations
from dgan_tf.inference.keypoint_estimation import (
    COCO18_FROM_BLAZEPOSE, EstimationReport, Estimator, PoseEnvironmentError, annotate_images,
    blazepose_to_coco18, find_images,
)
from dgan_tf.geometry.keypoints import MISSING
from tests.conftest import REPO_ROOT

SIZE = (128, 64)  # (H, W) of Market and the walk photos


def landmarks(visibility=1.0):
    """(33, 3) landmarks: landmark i at x = (i + 0.5) / 40, y = (i + 0.5) / 35, all with `visibility`."""
    i = np.arange(33, dtype=np.float64)
    return np.stack([(i + 0.5) / 40, (i + 0.5) / 35, np.full(33, visibility)], axis=-1)


def pixel_yx(lm, i, size=SIZE):
    return int(np.floor(lm[i, 1] * size[0])), int(np.floor(lm[i, 0] * size[1]))


# --- the mapping (main environment, no mediapipe) --------------------------------------------------------


def test_each_joint_comes_from_its_landmark_in_yx_order():
    lm = landmarks()
    keypoints = blazepose_to_coco18(lm, SIZE)
    assert keypoints.shape == (18, 2) and keypoints.dtype == np.int32
    for joint, landmark in enumerate(COCO18_FROM_BLAZEPOSE):
        if landmark is not None:
            assert tuple(keypoints[joint]) == pixel_yx(lm, landmark), joint
    # spot checks of the table against BlazePose's names: 12 right_shoulder, 23 left_hip, 5 right_eye, 7 left_ear
    assert tuple(keypoints[2]) == pixel_yx(lm, 12) and tuple(keypoints[11]) == pixel_yx(lm, 23)
    assert tuple(keypoints[14]) == pixel_yx(lm, 5) and tuple(keypoints[17]) == pixel_yx(lm, 7)


def test_y_is_the_row_and_x_the_column():
    lm = landmarks()
    lm[0, :2] = (0.25, 0.75)  # nose: a quarter across, three quarters down
    assert tuple(blazepose_to_coco18(lm, SIZE)[0]) == (96, 16)
    assert tuple(blazepose_to_coco18(lm, (64, 128))[0]) == (48, 32)


def test_neck_is_the_shoulders_midpoint():
    lm = landmarks()
    lm[11, :2] = (0.6, 0.35)  # left shoulder at x = 38.4, y = 44.8 px
    lm[12, :2] = (0.2, 0.25)  # right shoulder at x = 12.8, y = 32.0 px
    keypoints = blazepose_to_coco18(lm, SIZE)
    assert tuple(keypoints[1]) == (38, 25)  # midpoint (38.4, 25.6), floored
    assert tuple(keypoints[5]) == (44, 38) and tuple(keypoints[2]) == (32, 12)


@pytest.mark.parametrize("missing", [11, 12])
def test_one_shoulder_missing_makes_the_neck_missing(missing):
    lm = landmarks()
    lm[missing, 2] = 0.2
    keypoints = blazepose_to_coco18(lm, SIZE)
    shoulder = 5 if missing == 11 else 2
    other = 2 if missing == 11 else 5
    assert tuple(keypoints[1]) == (MISSING, MISSING) and tuple(keypoints[shoulder]) == (MISSING, MISSING)
    assert (keypoints[other] >= 0).all()


def test_visibility_threshold_is_inclusive_and_below_it_means_minus_one():
    lm = landmarks()
    lm[26, 2] = 0.49  # right knee -> joint 9
    lm[25, 2] = 0.5  # left knee -> joint 12
    keypoints = blazepose_to_coco18(lm, SIZE, min_visibility=0.5)
    assert tuple(keypoints[9]) == (MISSING, MISSING)
    assert tuple(keypoints[12]) == pixel_yx(lm, 25)
    assert (blazepose_to_coco18(lm, SIZE, min_visibility=0.0) >= 0).all()
    assert (blazepose_to_coco18(landmarks(0.3), SIZE, min_visibility=0.31) == MISSING).all()


def test_rounding_is_the_containing_pixel_and_edges_stay_inside():
    lm = landmarks()
    lm[0, :2] = (10.5 / 64, 20.999 / 128)  # a pixel centre and just below the next row
    lm[12, :2] = (1.0, 1.0)  # the far corner exactly: last pixel, not W or H
    lm[11, :2] = (0.0, 0.0)
    keypoints = blazepose_to_coco18(lm, SIZE)
    assert tuple(keypoints[0]) == (20, 10)
    assert tuple(keypoints[2]) == (127, 63) and tuple(keypoints[5]) == (0, 0)
    assert tuple(keypoints[1]) == (64, 32)  # midpoint of (0, 0) and (128, 64)


@pytest.mark.parametrize("xy", [(-0.01, 0.5), (1.01, 0.5), (0.5, -0.001), (0.5, 1.2), (np.nan, 0.5)])
def test_points_outside_the_image_or_nan_are_missing(xy):
    lm = landmarks()
    lm[0, :2] = xy
    keypoints = blazepose_to_coco18(lm, SIZE)
    assert tuple(keypoints[0]) == (MISSING, MISSING)
    assert (keypoints[2:] >= 0).all()


def test_nan_visibility_is_missing():
    lm = landmarks()
    lm[0, 2] = np.nan
    assert tuple(blazepose_to_coco18(lm, SIZE)[0]) == (MISSING, MISSING)


@pytest.mark.parametrize("kwargs, match", [
    (dict(landmarks_xyv=np.zeros((17, 3))), "shape"),
    (dict(landmarks_xyv=np.zeros((33, 2))), "shape"),
    (dict(image_size=(0, 64)), "image_size"),
    (dict(image_size=(128.5, 64)), "image_size"),
    (dict(image_size=128), "image_size"),
    (dict(min_visibility=1.5), "min_visibility"),
])
def test_bad_arguments_raise_value_errors(kwargs, match):
    args = dict(landmarks_xyv=landmarks(), image_size=SIZE, min_visibility=0.5) | kwargs
    with pytest.raises(ValueError, match=match):
        blazepose_to_coco18(**args)


def test_mapped_keypoints_round_trip_through_the_annotation_csv(tmp_path):
    rows = [blazepose_to_coco18(landmarks(), SIZE), blazepose_to_coco18(landmarks(0.1), SIZE)]
    path = tmp_path / "ann.csv"
    write_annotations(path, ["a.jpg", "b.jpg"], np.stack(rows))
    table = read_annotations(path, image_size=SIZE)
    np.testing.assert_array_equal(table.keypoints_yx, np.stack(rows))
    assert path.read_text().splitlines()[0] == "name:keypoints_y:keypoints_x"


def test_module_and_annotations_import_without_tensorflow_keras_jax_or_mediapipe(tmp_path):
    """What the pose environment has: no TensorFlow, Keras, JAX; mediapipe only once an Estimator is built."""
    code = textwrap.dedent(f"""
        import importlib.abc, sys
        BLOCKED = {{"tensorflow", "keras", "jax", "jaxlib", "mediapipe"}}
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError("blocked in this test: " + name)
        sys.meta_path.insert(0, Block())
        import numpy as np
        from dgan_tf.inference import keypoint_estimation as ke
        from dgan_tf.data.annotations import read_annotations, write_annotations
        kp = ke.blazepose_to_coco18(np.full((33, 3), 0.5), (128, 64))
        write_annotations({str(tmp_path / "a.csv")!r}, ["a.jpg"], kp[None])
        assert read_annotations({str(tmp_path / "a.csv")!r}).names == ("a.jpg",)
        try:
            ke.Estimator()
        except ke.PoseEnvironmentError as e:
            assert "with_pose_env.sh" in str(e)
        else:
            raise AssertionError("Estimator() without mediapipe must raise PoseEnvironmentError")
        print("ok", sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "ok []"


# --- the annotation run, with a stand-in estimator ------------------------------------------------------


class FakeEstimator:
    """Returns fixed keypoints for images brighter than mid grey, None (no person) otherwise."""

    def __init__(self):
        self.keypoints = blazepose_to_coco18(landmarks(), SIZE)

    def keypoints_yx(self, image, min_visibility):
        return self.keypoints if image.mean() > 128 else None


def _write_png(path, value, size=SIZE):
    import imageio.v3 as iio

    iio.imwrite(path, np.full((*size, 3), value, np.uint8))
    return path


def test_annotate_writes_rows_of_minus_one_for_no_person_and_leaves_out_unreadable_files(tmp_path):
    person = _write_png(tmp_path / "person.png", 200)
    empty = _write_png(tmp_path / "empty.png", 50)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    output = tmp_path / "out" / "ann.csv"
    report = annotate_images([person, empty, broken], output, estimator=FakeEstimator(), progress=False)
    assert isinstance(report, EstimationReport)
    assert report.names == ["person.png", "empty.png"] and report.annotated == 1 and report.with_torso == 1
    assert report.no_person == [("empty.png", "no person found")]
    assert len(report.skipped) == 1 and report.skipped[0][0] == str(broken) and "cannot be read" in report.skipped[0][1]
    assert "\n" not in report.skipped[0][1]
    table = read_annotations(output)
    assert table.names == ("person.png", "empty.png")
    np.testing.assert_array_equal(table.get("person.png"), FakeEstimator().keypoints)
    assert (table.get("empty.png") == MISSING).all()
    assert "3 images: 1 annotated (1 with all four torso joints), 1 with no person" in report.summary()


def test_annotate_writes_nothing_when_no_image_can_be_read(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    report = annotate_images([broken], tmp_path / "ann.csv", estimator=FakeEstimator(), progress=False)
    assert report.names == [] and report.annotated == 0 and not (tmp_path / "ann.csv").exists()


def test_find_images_expands_folders_in_name_order_and_rejects_bad_arguments(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("b.jpg", "a.PNG", "notes.txt", ".hidden.jpg"):
        (folder / name).write_bytes(b"x")
    single = tmp_path / "c.jpeg"
    single.write_bytes(b"x")
    assert [p.name for p in find_images([single, folder, folder / "b.jpg"])] == ["c.jpeg", "a.PNG", "b.jpg"]
    with pytest.raises(ValueError, match="no such file"):
        find_images([tmp_path / "nope.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        find_images([tmp_path / "empty"])
    other = tmp_path / "other"
    other.mkdir()
    (other / "b.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="share the name 'b.jpg'"):
        find_images([folder, other])


def _script_main(monkeypatch):
    """The wrapper's main, as `python scripts/estimate_keypoints.py` finds it (its folder first on sys.path)."""
    monkeypatch.syspath_prepend(str(REPO_ROOT / "scripts"))
    path = REPO_ROOT / "scripts" / "estimate_keypoints.py"
    spec = importlib.util.spec_from_file_location("estimate_keypoints_script", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load_main()


@pytest.mark.parametrize("args", [
    ["{tmp}/missing.jpg", "--output", "{tmp}/a.csv"],
    ["{tmp}/empty", "--output", "{tmp}/a.csv"],
    ["{tmp}", "--output", "{tmp}/a.csv", "--min-visibility", "1.5"],
    ["{tmp}/p.png", "--output", "{tmp}"],
    ["{tmp}/p.png"],
])
def test_script_bad_arguments_exit_2(tmp_path, capsys, monkeypatch, args):
    _write_png(tmp_path / "p.png", 200)
    (tmp_path / "empty").mkdir()
    argv = [a.format(tmp=tmp_path) for a in args]
    try:
        status = _script_main(monkeypatch)(argv)
    except SystemExit as e:  # argparse's own errors
        status = e.code
    assert status == 2
    assert "error:" in capsys.readouterr().err


def test_the_output_is_never_an_input_and_an_existing_one_needs_force(tmp_path, capsys):
    """`estimate_keypoints.py a.jpg b.png --output a.jpg` wrote the CSV over a.jpg. Refused before mediapipe loads."""
    from dgan_tf.cli.estimate_keypoints import main

    photo = _write_png(tmp_path / "a.jpg", 200)
    original = photo.read_bytes()
    _write_png(tmp_path / "b.png", 100)
    for extra in ([], ["--force"]):
        assert main([str(photo), str(tmp_path / "b.png"), "--output", str(photo), *extra]) == 2
        err = capsys.readouterr().err
        assert f"error: --output {photo} is one of the input images" in err and "would replace it" in err
    assert photo.read_bytes() == original
    (tmp_path / "ann.csv").write_text("an earlier annotation")
    assert main([str(photo), "--output", str(tmp_path / "ann.csv")]) == 2
    assert f"--output {tmp_path / 'ann.csv'} exists; add --force to replace it" in capsys.readouterr().err
    assert (tmp_path / "ann.csv").read_text() == "an earlier annotation"


def test_script_bad_argument_message_has_no_traceback(tmp_path):
    done = subprocess.run([sys.executable, "scripts/estimate_keypoints.py", str(tmp_path / "missing.jpg"),
                           "--output", str(tmp_path / "a.csv")], capture_output=True, text=True, cwd=REPO_ROOT,
                          timeout=300)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr  # (TensorFlow's start-up log may come first where dgan_tf imports Keras)
    assert done.stderr.strip().splitlines()[-1] == \
        f"error: no such file or folder: {tmp_path / 'missing.jpg'}"


def test_estimator_without_mediapipe_names_the_pose_environment():
    try:
        import mediapipe  # noqa: F401
    except Exception:
        pass
    else:
        pytest.skip("mediapipe is installed in this environment")
    with pytest.raises(PoseEnvironmentError, match="with_pose_env.sh"):
        Estimator()


# --- the estimator on real photos, through the pose environment (mediapipe 0.10.21) ---------------------


WALK_FRAMES = ("denis_walk000005.jpg", "denis_walk000030.jpg", "denis_walk000050.jpg")


@pytest.mark.slow
def test_estimator_on_real_photos_through_the_pose_environment(real_images, tmp_path):
    # scripts/with_pose_env.sh builds .venv-pose on first use (35-60 s), as a user's first run would.
    grey = _write_png(tmp_path / "grey.png", 128)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    photos = [real_images / name for name in WALK_FRAMES] + [real_images / "source-image.jpg"]
    output = tmp_path / "walk-annotation.csv"
    done = subprocess.run(
        ["bash", "scripts/with_pose_env.sh", "python", "scripts/estimate_keypoints.py", *map(str, photos),
         str(grey), str(broken), "--output", str(output), "--no-progress"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "6 images: 4 annotated (4 with all four torso joints), 1 with no person (rows of -1), 1 unreadable" \
        in done.stdout, done.stdout
    assert "no person: grey.png: no person found" in done.stderr
    assert f"left out: {broken}: cannot be read as an image" in done.stderr

    table = read_annotations(output, image_size=SIZE)
    assert table.names == (*WALK_FRAMES, "source-image.jpg", "grey.png")
    assert (table.get("grey.png") == MISSING).all()
    for name in (*WALK_FRAMES, "source-image.jpg"):
        keypoints = table.get(name)
        assert (keypoints[[1, 2, 5, 8, 11]] >= 0).all(), name  # neck and the four torso joints

    # Left/right. Front view (source image): the person's right is on the viewer's left.
    front = table.get("source-image.jpg")[:, 1]  # x
    assert front[2] < front[5] and front[8] < front[11] and front[3] < front[6]
    # Side view: the walker faces left (nose left of both ears), so his LEFT side faces the camera
    # (facing west, your left hand points south, at a viewer standing south). The near (left) arm is
    # seen whole, the far (right) elbow is hidden behind the torso: it must be the missing one.
    for name in WALK_FRAMES:
        keypoints = table.get(name)
        x = keypoints[:, 1]
        assert x[0] < x[16] and x[0] < x[17], name
        assert (keypoints[6] >= 0).all() and (keypoints[3] == MISSING).all(), name

    # PCKh through the same environment (what `scripts/test.py --pckh` runs on generated images): the
    # estimator against its own keypoints scores 1; against targets moved far away, 0.
    import imageio.v3 as iio

    from dgan_tf.evaluation.pckh import estimate_with_pose_environment, pckh

    images = np.stack([iio.imread(real_images / name) for name in WALK_FRAMES])
    targets = np.stack([table.get(name) for name in WALK_FRAMES])
    estimated = estimate_with_pose_environment(images, tmp_path / "pckh")
    np.testing.assert_array_equal(estimated, targets)
    assert pckh(estimated, targets) == 1.0
    moved = np.where(targets >= 0, (targets + 40) % np.array(SIZE), targets)
    assert pckh(estimated, moved) < 0.2
