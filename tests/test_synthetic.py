"""The synthetic dataset: layout, determinism, keypoints a detector would report, and rigid part textures."""

import re
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest

from dgan_tf.data import annotations, synthetic
from dgan_tf.geometry.keypoints import L_HIP, L_SHOULDER, R_HIP, R_KNEE, R_SHOULDER, TORSO_JOINTS

SMALL = dict(identities=6, images_per_identity=4, seed=0, test_fraction=1 / 3, workers=1)
SIZE = (128, 64)
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    """6 identities x 4 images at 128x64: 4 train identities, 2 test identities."""
    out = tmp_path_factory.mktemp("synthetic")
    summary = synthetic.make_synthetic_dataset(out, SIZE, **SMALL)
    return out, summary


def _image_names(out, split):
    return sorted(p.name for p in (out / "synthetic-dataset" / split).iterdir())


def _read_images(out, split):
    return {n: iio.imread(out / "synthetic-dataset" / split / n) for n in _image_names(out, split)}


def test_layout_and_file_names(small_dataset):
    out, summary = small_dataset
    assert synthetic.is_complete(out)
    for split, count in (("train", 16), ("test", 8)):
        names = _image_names(out, split)
        assert len(names) == count == summary["splits"][split]["images"]
        assert all(re.fullmatch(r"\d{4}_\d+\.jpg", n) for n in names), names
        for kind in ("annotation", "pairs"):
            assert (out / f"synthetic-{kind}-{split}.csv").is_file()
    assert "0000_0.jpg" in _image_names(out, "train") and "0005_3.jpg" in _image_names(out, "test")
    assert not list(out.glob(".synthetic-tmp-*")), "temporary build folder left behind"


def test_identities_disjoint_between_splits(small_dataset):
    out, _ = small_dataset
    ids = {split: {n.split("_")[0] for n in _image_names(out, split)} for split in ("train", "test")}
    assert ids["train"] == {"0000", "0001", "0002", "0003"} and ids["test"] == {"0004", "0005"}
    assert not ids["train"] & ids["test"]


def test_images_have_the_right_size_and_dtype(small_dataset, tmp_path):
    out, _ = small_dataset
    for image in _read_images(out, "train").values():
        assert image.shape == (128, 64, 3) and image.dtype == np.uint8
    synthetic.make_synthetic_dataset(tmp_path, (256, 256), identities=2, images_per_identity=2, test_fraction=0.5,
                                     workers=1)
    for split in ("train", "test"):
        for image in _read_images(tmp_path, split).values():
            assert image.shape == (256, 256, 3) and image.dtype == np.uint8
        annotations.read_annotations(tmp_path / f"synthetic-annotation-{split}.csv", image_size=(256, 256))


def test_annotations_read_back_inside_the_image(small_dataset):
    out, _ = small_dataset
    for split in ("train", "test"):
        table = annotations.read_annotations(out / f"synthetic-annotation-{split}.csv", image_size=SIZE)
        assert sorted(table.names) == _image_names(out, split)
        present = table.keypoints_yx[..., 0] != -1
        assert present.any(axis=1).all(), "every figure has some detected joint"


def test_pairs_are_same_identity_valid_images(small_dataset):
    out, summary = small_dataset
    for split in ("train", "test"):
        table = annotations.read_annotations(out / f"synthetic-annotation-{split}.csv")
        pairs = annotations.read_pairs(out / f"synthetic-pairs-{split}.csv", known_names=table.names)
        assert len(pairs) == summary["splits"][split]["pairs"] > 0
        for a, b in zip(pairs["from"], pairs["to"]):
            assert a != b and a.split("_")[0] == b.split("_")[0]
            assert (table.get(a)[list(TORSO_JOINTS)] >= 0).all() and (table.get(b)[list(TORSO_JOINTS)] >= 0).all()


def test_same_seed_same_files_other_seed_differs(small_dataset, tmp_path):
    out, _ = small_dataset
    synthetic.make_synthetic_dataset(tmp_path / "again", SIZE, **{**SMALL, "workers": 2})
    synthetic.make_synthetic_dataset(tmp_path / "other", SIZE, **{**SMALL, "seed": 1})
    for name in ("synthetic-annotation-train.csv", "synthetic-pairs-train.csv", "synthetic-pairs-test.csv"):
        assert (out / name).read_bytes() == (tmp_path / "again" / name).read_bytes()
    first, again = _read_images(out, "train"), _read_images(tmp_path / "again", "train")
    assert all(np.array_equal(first[n], again[n]) for n in first)
    other = _read_images(tmp_path / "other", "train")
    assert (out / "synthetic-annotation-train.csv").read_bytes() != (
        tmp_path / "other" / "synthetic-annotation-train.csv").read_bytes()
    assert all(np.abs(first[n].astype(int) - other[n]).mean() > 5 for n in first)


def test_written_images_are_the_in_memory_ones(small_dataset):
    out, _ = small_dataset
    table = annotations.read_annotations(out / "synthetic-annotation-test.csv")
    sample = synthetic.synthesize_image(0, 5, 2, SIZE)
    np.testing.assert_array_equal(table.get("0005_2.jpg"), sample.keypoints_yx)
    on_disk = iio.imread(out / "synthetic-dataset" / "test" / "0005_2.jpg")
    other = synthetic.synthesize_image(0, 5, 1, SIZE)
    error = np.abs(on_disk.astype(int) - sample.image).mean()
    assert error < 4  # JPEG quality 95, 4:4:4, on noisy pixels
    assert error < 0.3 * np.abs(on_disk.astype(int) - other.image).mean()


def test_missing_joints_and_side_views_occur():
    keypoints, side_views = synthetic.sample_poses(40, 10, SIZE, seed=0)  # (400, 18, 2), (400,)
    missing = keypoints[..., 0] == -1  # (400, 18)
    assert (missing == (keypoints[..., 1] == -1)).all()
    assert 0.05 < side_views.mean() < 0.5
    assert missing[:, [4, 7]].any(axis=1).mean() > 0.1, "missing wrists (forearm fallback)"
    assert missing[:, [10, 13]].any(axis=1).mean() > 0.05, "missing ankles (lower-leg fallback)"
    assert missing[:, [0, 14, 15, 16, 17]].any(axis=1).mean() > 0.2, "missing head points"
    assert missing[:, [0, 14, 15, 16, 17]].all(axis=1).any(), "no head point at all"
    invalid = missing[:, list(TORSO_JOINTS)].any(axis=1)
    assert 0.0 < invalid.mean() < 0.2, "some, not many, images invalid for pairs"
    present = ~missing
    assert (keypoints[present] >= 0).all() and (keypoints[present][:, 0] < 128).all()
    assert (keypoints[present][:, 1] < 64).all()


def _fit_affine(target_xy, source_xy):
    """Least-squares (3, 2) matrix M with [x, y, 1] @ M ~ source, for target points (N, 2)."""
    design = np.concatenate([target_xy, np.ones((len(target_xy), 1))], axis=1)
    matrix, *_ = np.linalg.lstsq(design, source_xy, rcond=None)
    return matrix


def _nearest(matrix, xs, ys, shape):
    """Nearest source pixel (x, y) of target pixels under a (3, 2) affine, clipped to the image."""
    mapped = np.rint(np.stack([xs, ys, np.ones_like(xs)], axis=1) @ matrix).astype(int)  # (N, 2)
    return np.clip(mapped[:, 0], 0, shape[1] - 1), np.clip(mapped[:, 1], 0, shape[0] - 1)


def _warp_errors(target, source, label, fitted, wrong):
    """Mean abs errors of predicting the target part's pixels from the source under `fitted` and each `wrong`.

    Only target pixels that `fitted` maps onto the same part in the source count (the part is visible
    in both); also returns that fraction of the target part's pixels.
    """
    ys, xs = np.nonzero(target.part_map == label)
    sx, sy = _nearest(fitted, xs, ys, source.part_map.shape)
    both = source.part_map[sy, sx] == label
    if not both.any():
        return None, 0.0
    xs, ys, values = xs[both], ys[both], target.image[ys[both], xs[both]].astype(float)
    errors = []
    for matrix in [fitted] + list(wrong):
        sx, sy = _nearest(matrix, xs, ys, source.part_map.shape)
        errors.append(np.abs(values - source.image[sy, sx]).mean())
    return errors, both.mean()


def _limb_corners(keypoints_yx, a, b, inc=0.1):
    """The original's rectangle corners (x, y) around the extended segment a-b, half width 0.2 st.

    pose-gan pose_transform.py:169-191 at 8693ec4 (estimate_polygon).
    """
    points = keypoints_yx[:, ::-1].astype(float)  # (18, 2) x, y
    st = np.sqrt((np.sum((points[R_HIP] - points[R_SHOULDER]) ** 2)
                  + np.sum((points[L_HIP] - points[L_SHOULDER]) ** 2)) / 2)
    a2 = points[a] + 0.1 * (points[a] - points[b])
    b2 = points[b] + inc * (points[b] - a2)
    normal = np.array([-(b2 - a2)[1], (b2 - a2)[0]]) / np.linalg.norm(b2 - a2) * 0.2 * st
    return np.stack([a2 + normal, a2 - normal, b2 - normal, b2 + normal])


def _frontal_image_groups(identities=4, count=10):
    """Per identity, its in-memory images that are not side views and have the four torso joints."""
    groups = []
    for identity_index in range(identities):
        samples = [synthetic.synthesize_image(3, identity_index, k, SIZE) for k in range(count)]
        groups.append([s for s in samples
                       if not s.pose.side_view and (s.keypoints_yx[list(TORSO_JOINTS)] >= 0).all()])
    return groups


@pytest.mark.parametrize("part", ["torso", "r_upper_leg"])
def test_part_texture_moves_with_the_keypoint_affine(part):
    """Warping a part from source to target with the keypoint affine predicts the target's pixels.

    The affine as the original fit it: pose-gan pose_transform.py:193-265 at 8693ec4.
    """
    errors = []
    for samples in _frontal_image_groups():
        for i, source in enumerate(samples):
            for target in samples[i + 1:]:
                if part == "torso":
                    label = 0
                    matrix = _fit_affine(target.keypoints_yx[list(TORSO_JOINTS), ::-1].astype(float),
                                         source.keypoints_yx[list(TORSO_JOINTS), ::-1].astype(float))
                else:
                    label = 2
                    if (target.keypoints_yx[[R_HIP, R_KNEE]] < 0).any() or (
                            source.keypoints_yx[[R_HIP, R_KNEE]] < 0).any():
                        continue
                    matrix = _fit_affine(_limb_corners(target.keypoints_yx, R_HIP, R_KNEE),
                                         _limb_corners(source.keypoints_yx, R_HIP, R_KNEE))
                identity = np.array([[1.0, 0], [0, 1], [0, 0]])
                shifted = matrix + np.array([[0, 0], [0, 0], [2.0, -3.0]])
                pair_errors, coverage = _warp_errors(target, source, label, matrix, [identity, shifted])
                if coverage >= 0.8:  # the part is visible in both images
                    errors.append(pair_errors)
    assert len(errors) >= 20, f"too few pairs with the {part} visible in both images"
    fitted, identity, shifted = np.median(np.array(errors), axis=0)
    assert fitted < 0.35 * identity, (fitted, identity)
    assert fitted < 0.45 * shifted, (fitted, shifted)


def test_ensure_keeps_a_complete_dataset_and_rebuilds_an_incomplete_one(tmp_path):
    kwargs = dict(identities=3, images_per_identity=2, test_fraction=0.4, workers=1)
    first = synthetic.ensure_synthetic_dataset(tmp_path, SIZE, **kwargs)
    assert first["generated"] and synthetic.is_complete(tmp_path)
    image = tmp_path / "synthetic-dataset" / "train" / "0000_0.jpg"
    stamp = image.stat().st_mtime_ns
    second = synthetic.ensure_synthetic_dataset(tmp_path, SIZE, **kwargs)
    assert not second["generated"] and image.stat().st_mtime_ns == stamp

    (tmp_path / synthetic.MARKER_NAME).unlink()  # as if interrupted before the marker was written
    image.unlink()
    assert not synthetic.is_complete(tmp_path)
    third = synthetic.ensure_synthetic_dataset(tmp_path, SIZE, **kwargs)
    assert third["generated"] and synthetic.is_complete(tmp_path) and image.is_file()

    (tmp_path / "synthetic-pairs-test.csv").unlink()  # marker present but a file lost
    assert not synthetic.is_complete(tmp_path)
    assert synthetic.ensure_synthetic_dataset(tmp_path, SIZE, **kwargs)["generated"]
    assert synthetic.ensure_synthetic_dataset(tmp_path, SIZE, **{**kwargs, "seed": 4})["generated"]


def test_interrupted_generation_leaves_no_complete_dataset(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_install", fail)
    with pytest.raises(KeyboardInterrupt):
        synthetic.make_synthetic_dataset(tmp_path, SIZE, identities=2, images_per_identity=1, test_fraction=0.5)
    assert not synthetic.is_complete(tmp_path)
    assert not list(tmp_path.iterdir()), "nothing but the finished dataset may appear in out_dir"


@pytest.mark.parametrize("kwargs, message", [
    (dict(image_size=(16, 8)), "image_size"),
    (dict(identities=0), "identities"),
    (dict(identities=1), "at least one training and one test identity"),
    (dict(images_per_identity=2.5), "images_per_identity"),
    (dict(test_fraction=1.5), "test_fraction"),
    (dict(seed=-1), "seed"),
    (dict(workers=0), "workers"),
])
def test_bad_arguments_are_named(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message) as error:
        synthetic.make_synthetic_dataset(tmp_path, **{"image_size": SIZE, **kwargs})
    assert "Received" in str(error.value)


def test_script_writes_a_dataset(tmp_path):
    command = [sys.executable, str(REPO_ROOT / "scripts" / "make_synthetic.py"), "--output-dir", str(tmp_path),
               "--image-size", "128x64", "--identities", "2", "--images-per-identity", "2", "--test-fraction", "0.5"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"images": 2' in result.stdout and synthetic.is_complete(tmp_path)
    bad = subprocess.run(command[:-2] + ["--image-size", "12x"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "HxW" in bad.stderr


def test_the_script_writes_where_the_registry_reads_unless_told_otherwise(tmp_path, capsys):
    """make_synthetic.py once wrote to data/synthetic by default, a folder train.py and test.py never read."""
    from dgan_tf.cli.make_synthetic import main
    from dgan_tf.data.datasets import get_dataset

    small = ["--identities", "2", "--images-per-identity", "2", "--test-fraction", "0.5"]
    assert main(["--data-root", str(tmp_path)] + small) == 0
    data = get_dataset("synthetic", data_root=str(tmp_path))
    assert data.data_dir == tmp_path / "synthetic-128x64" and synthetic.is_complete(data.data_dir)
    data.check_present("train")
    data.check_present("test")
    assert main(["--data-root", str(tmp_path), "--image-size", "64x32"] + small) == 2
    assert "give --output-dir for a 64x32 one" in capsys.readouterr().err
