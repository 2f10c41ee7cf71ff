"""Pose transfer: the letterbox map for images and keypoints, transfer.py end to end."""

import re
import subprocess
import sys

import numpy as np
import pytest

from dgan_tf.data.annotations import write_annotations
from dgan_tf.inference import transfer as tr
from dgan_tf.inference.generators import KerasGenerator
from dgan_tf.inference.poses import Pose
from dgan_tf.visualize import write_image_atomic
from tests.conftest import REPO_ROOT
from tests.serving_helpers import STANDING_POSE, make_tiny_run, write_openpose

MODEL_SIZE = (128, 64)


def test_the_letterbox_of_the_models_own_size_changes_nothing(rng):
    image = rng.integers(0, 256, MODEL_SIZE + (3,), dtype=np.uint8)
    box = tr.Letterbox.fit(MODEL_SIZE, MODEL_SIZE)
    np.testing.assert_array_equal(box.image(image), image)
    np.testing.assert_array_equal(box.keypoints(STANDING_POSE), STANDING_POSE)
    np.testing.assert_array_equal(box.unmap(image), image)


@pytest.mark.parametrize("frame", [(100, 100), (256, 128), (300, 90)])
def test_keypoints_follow_the_image_through_the_letterbox(frame):
    """A bright dot drawn at each keypoint of the frame lands on the mapped keypoint in the model's frame."""
    box = tr.Letterbox.fit(frame, MODEL_SIZE)
    scale = min(MODEL_SIZE[0] / frame[0], MODEL_SIZE[1] / frame[1])
    assert box.resized_size == tuple(int(round(f * scale)) for f in frame)
    points = np.array([[frame[0] * 0.3, frame[1] * 0.4], [frame[0] * 0.8, frame[1] * 0.7]]).round()
    for point in points:
        image = np.zeros(frame + (3,), np.uint8)
        radius = max(2, int(round(1.5 / scale)))
        y, x = int(point[0]), int(point[1])
        image[y - radius:y + radius + 1, x - radius:x + radius + 1] = 255
        mapped = box.image(image)[..., 0].astype(np.float64)
        assert mapped.shape == MODEL_SIZE
        rows, cols = np.indices(MODEL_SIZE)
        centroid = np.array([(rows * mapped).sum(), (cols * mapped).sum()]) / mapped.sum()
        keypoints = np.full((18, 2), -1, np.float32)
        keypoints[0] = point
        moved = box.keypoints(keypoints)
        assert np.abs(moved[0] - centroid).max() <= 1.0, (moved[0], centroid)
        assert np.all(moved[1:] == -1)  # missing joints stay missing


def test_unmap_returns_the_frame_size_and_undoes_the_padding(rng):
    frame = (100, 100)
    box = tr.Letterbox.fit(frame, MODEL_SIZE)
    assert box.resized_size == (64, 64) and box.offset == (32, 0)
    image = np.kron(rng.integers(0, 256, (10, 10, 3)), np.ones((10, 10, 1))).astype(np.uint8)  # smooth blocks
    back = box.unmap(box.image(image))
    assert back.shape == frame + (3,)
    assert np.abs(back.astype(int) - image.astype(int)).mean() < 12


class RecordingGenerator:
    """Stands for a network: returns each target's keypoints drawn as a brightness, and records the batches."""

    image_size = MODEL_SIZE

    def __init__(self):
        self.batches = []

    def generate(self, source_images, source_keypoints, target_keypoints):
        self.batches.append((source_images.shape, target_keypoints.copy()))
        level = np.clip(target_keypoints[:, 0, 0], 0, 255).astype(np.uint8)  # the nose row
        return np.broadcast_to(level[:, None, None, None], source_images.shape).copy()


def test_transfer_batches_with_one_shape_and_maps_back_to_the_photo(rng):
    photo = rng.integers(0, 256, (200, 100, 3), dtype=np.uint8)
    source = Pose(STANDING_POSE * 200 / 128, "s", "s")
    targets = [Pose(STANDING_POSE * 200 / 128 + 4 * i, f"t{i}", "t") for i in range(5)]  # inside the photo
    inputs = tr.prepare_inputs(photo, source, targets, MODEL_SIZE)
    assert inputs.source_image.shape == MODEL_SIZE + (3,) and inputs.target_keypoints.shape == (5, 18, 2)
    generator = RecordingGenerator()
    images = tr.transfer(generator, inputs, batch_size=2)
    assert [shape for shape, _ in generator.batches] == [(2, 128, 64, 3)] * 3  # the last batch padded
    np.testing.assert_array_equal(generator.batches[2][1][1], inputs.target_keypoints[4])
    assert len(images) == 5 and all(image.shape == (200, 100, 3) for image in images)
    assert [int(image[100, 50, 0]) for image in images] == [int(k[0, 0]) for k in inputs.target_keypoints]
    # target poses measured in another frame (a 128x64 annotation CSV) go through that frame's map
    other = tr.prepare_inputs(photo, source, [Pose(STANDING_POSE, "t", "t")], MODEL_SIZE, target_frame=MODEL_SIZE)
    np.testing.assert_array_equal(other.target_keypoints[0], STANDING_POSE)
    np.testing.assert_array_equal(other.source_keypoints, inputs.source_keypoints)


def test_output_names_are_safe():
    assert tr.output_name(3, "walk 12/keypoints") == "003_walk_12_keypoints.png"
    assert tr.output_name(0, "..") == "000_pose.png"


@pytest.fixture
def inputs_dir(tmp_path, rng):
    """A 200x100 photo, an annotation CSV with its pose and a target, and OpenPose files (COCO-18, BODY_25)."""
    scale = 200 / 128
    write_image_atomic(tmp_path / "photo.png", rng.integers(0, 256, (200, 100, 3), dtype=np.uint8))
    source = np.round(STANDING_POSE * scale).astype(np.int64)
    target = np.round((STANDING_POSE + np.float32([5, -4])) * scale).astype(np.int64)
    write_annotations(tmp_path / "poses.csv", ["photo.png", "pose_b.jpg"], np.stack([source, target]))
    moved = STANDING_POSE * scale + np.float32([-6, 7])
    moved[16] = -1
    write_openpose(tmp_path / "frame_0.json", [moved])
    write_openpose(tmp_path / "frame_1.json", [moved + 4], body25=True)
    return tmp_path


@pytest.mark.parametrize("change, message", [
    ({"--source": "missing.png"}, "error: .*missing.png does not exist"),
    ({"--source": "poses.csv"}, r"error: .*poses.csv is not a decodable image \(PNG or JPEG expected\)"),
    ({"--source-pose": "bad.json"}, "error: .*bad.json is not a readable JSON file"),
    ({"--target-pose": "no_torso.json"}, "error: target pose .*no_torso.json has no r_hip"),
    ({"--source-pose": "poses.csv:nobody.jpg"}, "error: .*poses.csv has no row named 'nobody.jpg'"),
])
def test_bad_input_gets_one_line_naming_the_file(inputs_dir, capsys, change, message):
    """Checked before any model is loaded: the checkpoint here does not even exist."""
    from dgan_tf.cli.transfer import main

    (inputs_dir / "bad.json").write_text('{"people": [')
    no_torso = STANDING_POSE.copy()
    no_torso[8] = -1
    write_openpose(inputs_dir / "no_torso.json", [no_torso])
    args = {"--run": "no-run", "--source": "photo.png", "--source-pose": "poses.csv:photo.png",
            "--target-pose": "frame_0.json", "--output-dir": "out"}
    args.update(change)
    argv = [part for key, value in args.items() for part in (key, str(inputs_dir / value))]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err


def run_only_config(folder):
    """A run folder with config.json alone: enough for --write-request, which reads the model's size from it."""
    from dgan_tf.config import build_run_config
    from dgan_tf.run import Run

    Run(folder).save_config(build_run_config("synthetic", "dsc", width=0.0625, data_root=str(folder / "no-data")))
    return folder


def transfer_args(inputs_dir, **change):
    args = {"--run": "no-run", "--source": "photo.png", "--source-pose": "poses.csv:photo.png",
            "--target-pose": "frame_0.json", "--output-dir": "out"}
    args.update(change)
    return [part for key, value in args.items() if value is not None for part in (key, str(inputs_dir / value))]


def test_a_16_bit_grey_photo_is_read_as_every_tool_reads_it(inputs_dir):
    """transfer.py read a 16-bit grey PNG clipped to white; now through the one image reader: round(v / 257)."""
    import json

    import imageio.v3 as iio

    from dgan_tf.cli.transfer import main

    values = np.array([0, 128, 129, 386, 32896, 65535], np.uint16)  # 0.498, 0.502, 1.502 x 257
    photo = np.resize(values, MODEL_SIZE).astype(np.uint16)  # (128, 64) grey, the model's size: no letterbox
    iio.imwrite(inputs_dir / "grey16.png", photo)
    write_annotations(inputs_dir / "grey.csv", ["grey16.png"], STANDING_POSE[None].astype(np.int64))
    run_only_config(inputs_dir / "run")
    assert main(transfer_args(inputs_dir, **{"--run": "run", "--source": "grey16.png", "--source-pose":
                                             "grey.csv:grey16.png", "--target-pose": "grey.csv:grey16.png",
                                             "--output-dir": None, "--write-request": "request.json"})) == 0
    sent = np.asarray(json.loads((inputs_dir / "request.json").read_text())["instances"][0]["source_image"])
    expected = ((photo.astype(np.uint32) + 128) // 257).astype(np.uint8)
    assert sent.shape == MODEL_SIZE + (3,) and np.array_equal(sent, np.repeat(expected[..., None], 3, axis=-1))
    assert sorted(set(expected.ravel())) == [0, 1, 2, 128, 255]


def test_poses_outside_their_frame_are_refused_naming_the_joint(inputs_dir, capsys):
    """A 1x1 photo with a 128x64 pose gave a 1x1 output; an OpenPose joint at 1e30 passed the torso check."""
    from dgan_tf.cli.transfer import main

    write_image_atomic(inputs_dir / "tiny.png", np.zeros((1, 1, 3), np.uint8))
    far = STANDING_POSE * (200 / 128)
    far[4] = [1e30, 50]
    write_openpose(inputs_dir / "far.json", [far])
    cases = {"--source": ("tiny.png", r"source pose .*poses.csv:photo.png: joint nose at \(y=23, x=50\) lies outside "
                                      r"the photo, 1x1 \(0 <= y < 1, 0 <= x < 1\) \(and 17 more joint\(s\)\); the "
                                      "source pose must be in the photo's pixels"),
             "--target-pose": ("far.json", r"target pose .*far.json: joint r_wrist at \(y=1e\+30, x=50\) lies "
                                           r"outside the photo, 200x100 .*unless a target frame \(--target-frame")}
    for flag, (value, message) in cases.items():
        assert main(transfer_args(inputs_dir, **{flag: value})) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        assert re.search(message, err), err
    assert not (inputs_dir / "out").exists()


def test_an_existing_request_file_needs_force(inputs_dir, capsys):
    from dgan_tf.cli.transfer import main

    run_only_config(inputs_dir / "run")
    (inputs_dir / "request.json").write_text("keep")
    argv = transfer_args(inputs_dir, **{"--run": "run", "--output-dir": None, "--write-request": "request.json"})
    assert main(argv) == 2
    assert "--write-request" in capsys.readouterr().err and (inputs_dir / "request.json").read_text() == "keep"
    assert main(argv + ["--force"]) == 0 and "instances" in (inputs_dir / "request.json").read_text()


def test_a_whole_csv_leaves_out_the_source_row_and_rows_narrow_it(inputs_dir, capsys):
    """A CSV made from a folder holds the source photo's row too: it was taken as a frame. --rows narrows a sequence;
    --encoded writes serving_encoded's body (the photo as a base64 PNG file)."""
    import base64
    import json

    import imageio.v3 as iio

    from dgan_tf.cli.transfer import main

    run_only_config(inputs_dir / "run")
    rows = np.stack([STANDING_POSE * 200 / 128 + shift for shift in (0, 2, 4, 6)]).astype(np.int64)
    write_annotations(inputs_dir / "walk.csv", ["photo.png", "walk_1.jpg", "walk_2.jpg", "run_1.jpg"], rows)

    def targets(*extra):
        argv = transfer_args(inputs_dir, **{"--run": "run", "--output-dir": None, "--write-request": "r.json",
                                            "--source-pose": "walk.csv:photo.png", "--target-pose": "walk.csv"})
        assert main(argv + ["--force", *extra]) == 0, capsys.readouterr().err
        return json.loads((inputs_dir / "r.json").read_text())

    assert len(targets()["instances"]) == 3  # walk_1, walk_2, run_1: not photo.png
    assert len(targets("--rows", "walk_*")["instances"]) == 2
    assert len(targets("--rows", "photo.png", "run_*")["instances"]) == 2  # named exactly: taken
    body = targets("--encoded")
    assert body["signature_name"] == "serving_encoded" and len(body["instances"]) == 3
    sent = iio.imread(base64.b64decode(body["instances"][0]["source_image_bytes"]["b64"]))
    assert sent.shape == MODEL_SIZE + (3,)  # the letterboxed photo, as a PNG file
    assert main(transfer_args(inputs_dir, **{"--target-pose": "poses.csv"}) + ["--rows", "jump_*"]) == 2
    assert re.search(r"error: no name of .*poses.csv matches --rows jump_\* \(2 names: photo.png, pose_b.jpg; "
                     r"photo.png left out \(the source's\)\)", capsys.readouterr().err)
    with pytest.raises(SystemExit):
        main(transfer_args(inputs_dir) + ["--encoded"])  # --encoded goes with --write-request


@pytest.mark.slow
def test_transfer_script_end_to_end(inputs_dir):
    """A run folder, a CSV source pose, a 3-pose sequence (CSV row, COCO-18 and BODY_25 JSON), --gif."""
    import imageio.v3 as iio

    run_dir = inputs_dir / "run"
    model = make_tiny_run(run_dir, MODEL_SIZE)
    out = inputs_dir / "out"
    done = subprocess.run(
        [sys.executable, "scripts/transfer.py", "--run", run_dir, "--source", inputs_dir / "photo.png",
         "--source-pose", f"{inputs_dir / 'poses.csv'}:photo.png", "--target-pose",
         f"{inputs_dir / 'poses.csv'}:pose_b.jpg", inputs_dir / "frame_0.json", inputs_dir / "frame_1.json",
         "--output-dir", out, "--gif"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "3 images of photo.png (200x100; model 128x64" in done.stdout
    names = sorted(p.name for p in out.iterdir())
    assert names == ["000_pose_b.png", "001_frame_0.png", "002_frame_1.png", "transfer.gif"]
    frames = iio.imread(out / "transfer.gif", index=None)
    assert frames.shape[:3] == (3, 200, 100)
    written = [iio.imread(out / name) for name in names[:3]]
    assert all(image.shape == (200, 100, 3) for image in written)

    # What the script wrote is the generator's output on the letterboxed inputs, mapped back.
    from dgan_tf.images import read_image, serving_uint8
    from dgan_tf.inference import poses

    photo = read_image(inputs_dir / "photo.png")
    targets = poses.read_poses(f"{inputs_dir / 'poses.csv'}:pose_b.jpg") + \
        poses.read_poses(inputs_dir / "frame_0.json") + poses.read_poses(inputs_dir / "frame_1.json")
    inputs = tr.prepare_inputs(photo, poses.read_pose(f"{inputs_dir / 'poses.csv'}:photo.png"), targets, MODEL_SIZE)
    images, source_keypoints, target_keypoints = next(inputs.batches(3))
    expected = KerasGenerator(model).generate(images, source_keypoints, target_keypoints)  # the serving graph
    for image, generated in zip(written, expected):
        assert np.array_equal(image, inputs.letterbox.unmap(generated))
    # ... which rounds the model's own output (eager here, so a last-bit difference of the float may move one level)
    eager = serving_uint8(np.asarray(model([(images / 255.0 - 0.5) * 2.0, source_keypoints, target_keypoints],
                                           training=False)))
    assert np.abs(eager.astype(int) - expected.astype(int)).max() <= 1
