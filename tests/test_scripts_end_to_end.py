"""End to end through the command lines: train.py -> test.py -> test.py --score-dir -> train.py resumes."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def run_script(*args, timeout=600):
    done = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO_ROOT)
    return done


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A 2-iteration run of train.py on a tiny synthetic set, as a user would start it."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import ensure_synthetic_dataset

    root = tmp_path_factory.mktemp("e2e")
    data = get_dataset("synthetic", data_root=str(root / "data"))
    ensure_synthetic_dataset(data.data_dir, image_size=data.image_size, identities=5, images_per_identity=3)
    run_dir = root / "run"
    done = run_script("scripts/train.py", "--data-root", root / "data", "--run", run_dir, "--iterations", 2,
                      "--batch-size", 1, "--width", 0.125, "--checkpoint-every", 1, "--sample-every", 1,
                      "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    return root, run_dir, done.stdout


def test_train_script_writes_the_run(tiny_run):
    _, run_dir, stdout = tiny_run
    assert "iterations 0 -> 2" in stdout
    assert (run_dir / "generator.keras").exists() and (run_dir / "samples" / "latest.png").exists()
    assert (run_dir / "checkpoints" / "ckpt-00000002.npz").exists()
    assert "done: d_loss" in stdout  # finite losses (a NaN or Inf stops train.py with exit 3)
    with np.load(run_dir / "checkpoints" / "ckpt-00000001.npz") as first, \
            np.load(run_dir / "checkpoints" / "ckpt-00000002.npz") as second:
        for network in ("generator/", "discriminator/"):  # the second iteration changed both networks
            keys = [key for key in first.files if key.startswith(network)]
            assert keys and any(not np.array_equal(first[key], second[key]) for key in keys), network


def test_test_script_generates_every_pair_and_scores_any_folder(tiny_run):
    root, run_dir, _ = tiny_run
    done = run_script("scripts/test.py", "--run", run_dir, "--no-inception", "--no-progress", "--real-data")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| model | SSIM | IS | mask-SSIM | mask-IS | DS | FID | SSIM (GFLA) | PCKh |" in done.stdout
    report = json.loads((run_dir / "test" / "metrics.json").read_text())
    ours = report["rows"]["dgan_tf dsc"]
    pairs = (root / "data" / "synthetic-128x64" / "synthetic-pairs-test.csv").read_text().strip().splitlines()[1:]
    assert ours["count"] == len(pairs) == len(list((run_dir / "test" / "images").glob("*.png")))
    assert 0.0 < ours["ssim"] < 1.0 and "is" not in ours  # --no-inception: no IS column
    assert report["rows"]["Real data"]["ssim"] == pytest.approx(1.0)

    # the same images scored as "another method's folder" give the same numbers (PNG is lossless)
    done = run_script("scripts/test.py", "--score-dir", run_dir / "test" / "images", "--dataset", "synthetic",
                      "--data-root", root / "data", "--no-inception", "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    scored = json.loads((run_dir / "test" / "images-scores" / "metrics.json").read_text())["rows"]["images"]
    assert scored["count"] == ours["count"]
    assert scored["ssim"] == pytest.approx(ours["ssim"], abs=1e-9)
    assert scored["mask_ssim"] == pytest.approx(ours["mask_ssim"], abs=1e-9)


def test_train_script_refuses_a_conflicting_flag(tiny_run):
    """A typed flag that conflicts with the saved run is refused (resuming itself: the test below)."""
    root, run_dir, _ = tiny_run
    done = run_script("scripts/train.py", "--data-root", root / "data", "--run", run_dir, "--variant",
                      "baseline", "--no-progress")
    assert done.returncode == 2
    assert "variant: saved 'dsc', requested 'baseline'" in done.stderr and "Traceback" not in done.stderr

def test_a_non_default_run_resumes_from_its_folder_alone(tmp_path):
    """baseline at 256x256, interrupted after its first checkpoint, resumes with `--run RUN` and no other flag."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import ensure_synthetic_dataset

    data = get_dataset("synthetic", data_root=str(tmp_path / "data"), image_size="256x256")
    ensure_synthetic_dataset(data.data_dir, image_size=data.image_size, identities=3, images_per_identity=2)
    run_dir = tmp_path / "run"
    done = run_script("scripts/train.py", "--variant", "baseline", "--image-size", "256x256", "--data-root",
                      tmp_path / "data", "--output-dir", run_dir, "--iterations", 2, "--batch-size", 1, "--width",
                      0.0625, "--checkpoint-every", 1, "--sample-every", 5, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    # As if killed after the first checkpoint: the second and the final generator never got written.
    (run_dir / "checkpoints" / "ckpt-00000002.npz").unlink()
    (run_dir / "generator.keras").unlink()
    done = run_script("scripts/train.py", "--run", run_dir, "--no-progress")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Resuming" in done.stdout and "iterations 1 -> 2" in done.stdout
    assert "variant baseline" in done.stdout and "256x256" in done.stdout
    assert (run_dir / "checkpoints" / "ckpt-00000002.npz").exists() and (run_dir / "generator.keras").exists()
