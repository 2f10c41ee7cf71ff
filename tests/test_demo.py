"""scripts/demo.py: targets of every kind read in order (the source's row and photo left out), the person framed as
in training, strips and an enlarged GIF, the model's default and its error; and the demo from real photos through
the pose environment."""

import numpy as np
import pytest

from dgan_tf.data.annotations import write_annotations
from dgan_tf.inference import demo
from dgan_tf.visualize import write_image_atomic
from tests.serving_helpers import STANDING_POSE, make_tiny_run, write_openpose

MODEL_SIZE = (128, 64)


def test_the_person_is_cropped_to_the_models_aspect_with_markets_margins():
    """A person small in a large frame fills the model's frame as in Market's crops; a photo the size of the
    model's frame stays whole; a box over the border moves inside; one larger than the frame is clipped."""
    pose = STANDING_POSE / 2 + np.float32([200, 300])  # 50 pixels of keypoints, nose to ankles, in a 480x640 frame
    top, left, height, width = demo.person_region(pose, (480, 640), MODEL_SIZE)
    assert abs(height / width - 2) < 0.05 and 60 <= height <= 66
    keypoints, _ = demo.into_model_frame(pose, (480, 640), MODEL_SIZE)
    assert 11 <= keypoints[:, 0].min() <= 13 and 112 <= keypoints[:, 0].max() <= 116  # Market: 0.093 and 0.117
    assert abs(keypoints[:, 1].mean() - 32) < 2
    assert demo.into_model_frame(STANDING_POSE + 3, MODEL_SIZE, MODEL_SIZE)[0].tolist() == (STANDING_POSE + 3).tolist()
    near_top = STANDING_POSE / 2 + np.float32([0, 300])
    top, left, height, width = demo.person_region(near_top, (480, 640), MODEL_SIZE)
    assert top == 0 and abs(height / width - 2) < 0.05  # moved down, not cut
    top, _, height, _ = demo.person_region(STANDING_POSE * 3.4, (400, 300), MODEL_SIZE)  # eyes at 41, ankles at 391
    assert (top, top + height) == (5, 400)  # taller than the frame: clipped to it, not moved
    missing = np.full((18, 2), -1, np.float32)
    assert demo.person_region(missing, (480, 640), MODEL_SIZE) == (0, 0, 480, 640)


def test_the_photo_follows_its_keypoints_into_the_models_frame(rng):
    photo = rng.integers(0, 100, (480, 640, 3), dtype=np.uint8)
    pose = STANDING_POSE / 2 + np.float32([200, 300])
    y, x = pose[2].astype(int)  # r_shoulder: a white mark there
    photo[y - 1:y + 2, x - 1:x + 2] = 255
    keypoints, image = demo.into_model_frame(pose, photo.shape[:2], MODEL_SIZE, photo)
    assert image.shape == MODEL_SIZE + (3,)
    ky, kx = keypoints[2].astype(int)
    assert image[ky - 1:ky + 2, kx - 1:kx + 2].max() > 200
    whole_keypoints, whole = demo.into_model_frame(pose, photo.shape[:2], MODEL_SIZE, photo, crop=False)
    assert whole.shape == MODEL_SIZE + (3,) and whole_keypoints[:, 0].max() - whole_keypoints[:, 0].min() < 15


@pytest.fixture
def targets_dir(tmp_path, rng):
    """A folder of photos holding the source photo too, a 3-frame GIF, a CSV holding the source's row, OpenPose."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("source.png", "frame_2.png", "frame_10.png"):
        write_image_atomic(photos / name, rng.integers(0, 256, MODEL_SIZE + (3,), dtype=np.uint8))
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "clip.gif", rng.integers(0, 256, (3,) + MODEL_SIZE + (3,), dtype=np.uint8), duration=100)
    poses = np.stack([STANDING_POSE, STANDING_POSE + 2, STANDING_POSE - 2]).astype(np.int64)
    write_annotations(tmp_path / "poses.csv", ["source.png", "walk_1.jpg", "run_1.jpg"], poses)
    write_openpose(tmp_path / "frame.json", [STANDING_POSE + 3])
    return tmp_path


def test_targets_of_every_kind_are_read_in_order_without_the_source(targets_dir):
    source = targets_dir / "photos" / "source.png"
    specs = [targets_dir / "photos", targets_dir / "clip.gif", targets_dir / "poses.csv",
             f"{targets_dir / 'poses.csv'}:source.png", targets_dir / "frame.json"]
    targets = demo.read_targets(specs, source, MODEL_SIZE, exclude={"source.png"})
    assert [t.label for t in targets] == ["frame_2", "frame_10", "clip_00000", "clip_00001", "clip_00002", "walk_1",
                                          "run_1", "source", "frame"]  # natural order; a named row is taken
    assert [t.sequence for t in targets] == [0, 0, 1, 1, 1, 2, 2, 3, 4]
    assert all(t.image.shape == MODEL_SIZE + (3,) and t.keypoints_yx is None for t in targets[:5])
    assert all(t.image is None and t.keypoints_yx.shape == (18, 2) for t in targets[5:])
    named = demo.read_targets(specs[:3], source, MODEL_SIZE, rows=["source.png", "walk_*"], exclude={"source.png"})
    assert [t.label for t in named] == ["source", "clip_00000", "clip_00001", "clip_00002", "source", "walk_1"]
    assert [t.label for t in demo.read_targets([targets_dir / "clip.gif"], source, MODEL_SIZE, every=2)] == \
        ["clip_00000", "clip_00002"]
    with pytest.raises(ValueError, match=r"no name of .*poses.csv matches --rows jump_\*"):
        demo.read_targets([targets_dir / "poses.csv"], source, MODEL_SIZE, rows=["jump_*"])


def test_a_video_imageio_cannot_read_here_names_the_pip_install(targets_dir, monkeypatch):
    import importlib.util

    (targets_dir / "clip.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(64))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)  # neither imageio-ffmpeg nor av
    with pytest.raises(demo.VideoError, match=r"clip.mp4: reading .mp4 files needs a video plugin for imageio .* "
                                              r"pip install imageio-ffmpeg \(or: pip install av\)"):
        demo.read_targets([targets_dir / "clip.mp4"], targets_dir / "x.png", MODEL_SIZE)


class StandInGenerator:
    """The generator's interface (image_size, source, generate on batches); 'generates' the inverted source image."""

    image_size, source = MODEL_SIZE, "a stand-in"

    def generate(self, source_images, source_keypoints, target_keypoints):
        return 255 - np.asarray(source_images)


def config_only_run(folder):
    from dgan_tf.config import build_run_config
    from dgan_tf.run import Run

    Run(folder).save_config(build_run_config("synthetic", "dsc", width=0.0625, data_root=str(folder / "no-data")))
    return folder


def test_the_demo_writes_a_strip_per_target_and_an_enlarged_gif(targets_dir, monkeypatch, capsys):
    """A CSV holding the photo's own row (left out), a target without a hip (skipped, its number left free)."""
    import imageio.v3 as iio

    from dgan_tf.cli.demo import main
    from dgan_tf.inference import generators

    monkeypatch.setattr(generators, "load_generator", lambda path: StandInGenerator())
    no_hip = STANDING_POSE.copy()
    no_hip[8] = -1
    write_openpose(targets_dir / "no_hip.json", [no_hip])
    out = targets_dir / "out"
    argv = [str(targets_dir / "photos" / "source.png"), "--source-pose", str(targets_dir / "frame.json"),
            "--target", str(targets_dir / "poses.csv"), str(targets_dir / "no_hip.json"), str(targets_dir / "frame.json"),
            "--run", str(config_only_run(targets_dir / "run")), "--output-dir", str(out), "--gif", "--no-fill-missing"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "skipped " + str(targets_dir / "no_hip.json") + ": no r_hip" in captured.err
    assert f"3 strips of source.png (source | target | generated, 128x64 each; StandInGenerator from a stand-in) " \
           f"written to {out}, animated in demo.gif" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["000_walk_1.png", "001_run_1.png", "003_frame.png", "demo.gif"]
    strip = iio.imread(out / "000_walk_1.png")
    photo = iio.imread(targets_dir / "photos" / "source.png")
    assert strip.shape == (128, 192, 3)
    np.testing.assert_array_equal(strip[:, :64], photo)  # a 128x64 crop stays whole
    np.testing.assert_array_equal(strip[:, 128:], 255 - photo)  # the generated panel
    assert strip[:, 64:128].max() > 0 and (strip[:, 64:128] == 0).mean() > 0.8  # a skeleton on black
    frames = iio.imread(out / "demo.gif", index=None)
    assert frames.shape == (3, 256, 384, 3)  # enlarged 2x, nearest neighbour (GIF's 256 colours: close, not equal)
    np.testing.assert_array_equal(frames[0][::2, ::2], frames[0][1::2, 1::2])  # 2x2 blocks, no blur
    assert np.abs(frames[0][::2, ::2].astype(int) - strip).mean() < 20


def test_without_a_model_the_demo_says_how_to_get_one(targets_dir, monkeypatch, capsys):
    from dgan_tf.cli.demo import main

    monkeypatch.chdir(targets_dir)  # no runs/synthetic-dsc here
    assert main([str(targets_dir / "photos" / "source.png"), "--target", str(targets_dir / "frame.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no model: --run was not given and runs/synthetic-dsc, the README's main job, is "
                          f"not in {targets_dir}; train it with `bash scripts/with_env.sh python scripts/train.py`")
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_demo_from_a_photo_and_a_video_through_the_pose_environment(real_images, tmp_path, capsys):
    """The photo and a GIF's frames (walk photos enlarged into a larger frame) estimated, cropped to the walker,
    generated: a strip per frame and the GIF."""
    import imageio.v3 as iio
    from PIL import Image

    from dgan_tf.cli.demo import main
    from dgan_tf.images import read_image

    walk = [read_image(real_images / name) for name in ("denis_walk000005.jpg", "denis_walk000030.jpg",
                                                        "denis_walk000050.jpg")]
    frames = []
    for index, photo in enumerate(walk):  # 256x128 walkers in 300x400 frames, at three places
        large = np.asarray(Image.fromarray(photo).resize((128, 256), Image.Resampling.BICUBIC))
        left = 40 + 100 * index
        frames.append(np.pad(large, ((22, 22), (left, 400 - 128 - left), (0, 0)), mode="edge"))
    iio.imwrite(tmp_path / "walk.gif", np.stack(frames), duration=100, loop=0)
    make_tiny_run(tmp_path / "run", MODEL_SIZE)
    out = tmp_path / "out"
    # main() in this process (TensorFlow is loaded already); the estimator runs in its own environment
    assert main([str(real_images / "source-image.jpg"), "--target", str(tmp_path / "walk.gif"), "--run",
                 str(tmp_path / "run"), "--output-dir", str(out), "--gif"]) == 0
    assert "3 strips of source-image.jpg" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["000_walk_00000.png", "001_walk_00001.png", "002_walk_00002.png",
                                                     "demo.gif"]
    for index, photo in enumerate(walk):
        strip = iio.imread(out / f"{index:03d}_walk_{index:05d}.png")
        assert strip.shape == (128, 192, 3)
        np.testing.assert_array_equal(strip[:, :64], read_image(real_images / "source-image.jpg"))
        # The target panel is the walker cropped out of the 300x400 frame, about the walk photo again (and the
        # skeleton); the whole frame letterboxed would be another picture.
        difference = np.abs(strip[:, 64:128].astype(int) - photo).mean()
        assert difference < 30, difference
    assert iio.imread(out / "demo.gif", index=None).shape == (3, 256, 384, 3)
