"""Interruptions and hostile inputs: kill -9 at several moments, SIGTERM / Ctrl-C, an image that becomes unreadable
mid-run, unusable checkpoints, malformed config.json / .keras / pair CSV, 16-bit and undecodable images,
make_pairs.py overwriting its input, a collapsed limb (a singular part transform). Each gives a clear message naming the file, exit code 2 and no traceback, or
loses at most the iterations since the last checkpoint.

Trainers run eagerly at width 0.0625 on a tiny synthetic dataset; subprocesses are bounded by timeouts.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

WIDTH = 0.0625




@pytest.fixture
def own_data_root(tiny_data_root, tmp_path):
    """A private copy of the tiny dataset, for tests that damage it."""
    root = tmp_path / "data"
    shutil.copytree(tiny_data_root, root)
    return str(root)


def tiny_config(data_root, **overrides):
    from dgan_tf.config import build_run_config

    values = dict(iterations=3, batch_size=1, checkpoint_every=1, sample_every=1000, width=WIDTH,
                  data_root=data_root, seed=0)
    values.update(overrides)
    return build_run_config("synthetic", "dsc", **values)


def tiny_trainer(config, run_dir):
    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run

    return build_trainer(config, Run(run_dir), xla=False, progress=False, run_eagerly=True)


def synthetic(data_root):
    from dgan_tf.data.datasets import get_dataset

    return get_dataset("synthetic", data_root=data_root)


# ---- a singular part transform


def test_a_collapsed_limb_gives_a_normal_step(tmp_path):
    """The original skipped any step whose warp gradient raised InvalidArgumentError (pose-gan gan/train.py:77-81,
    submodule a4aa9a3): a collapsed source limb gave a transform invertible in float64, its only check, but singular
    in float32, where TF's gradient inverts it. dgan_tf's geometry rejects such a fit (no_point: the part samples
    outside) and the step is a normal one: finite losses, every weight of G and D updated and finite."""
    import tensorflow as tf

    from dgan_tf.build import build_gan
    from dgan_tf.geometry import reference
    from dgan_tf.geometry.keypoints import R_ANKLE, R_KNEE
    from dgan_tf.geometry.parts import part_affines
    from test_geometry import BASE_POSE

    source, target = BASE_POSE.copy(), BASE_POSE.copy()
    source[R_ANKLE] = source[R_KNEE]  # the right lower leg collapses to a point in the source
    original = np.append(reference.part_affines(source, target)[4, :6], [0, 0, 1]).reshape(3, 3)
    assert np.linalg.det(original) != 0  # the original kept it ...
    with pytest.raises(tf.errors.InvalidArgumentError, match="not invertible"):
        tf.linalg.inv(tf.constant(original, tf.float32))  # ... and its float32 warp gradient raised
    np.testing.assert_array_equal(np.asarray(part_affines(source[None], target[None]))[0, 4],
                                  [1, 0, 1000, 0, 1, 1000, 0, 0])

    gan = build_gan(tiny_config(str(tmp_path)))  # no data is read: the batch is given
    rng = np.random.default_rng(0)
    batch = {"source_image": rng.uniform(-1, 1, (3, 128, 64, 3)), "target_image": rng.uniform(-1, 1, (3, 128, 64, 3)),
             "source_keypoints": np.stack([source] * 3), "target_keypoints": np.stack([target] * 3)}
    batch = {name: tf.constant(value, tf.float32) for name, value in batch.items()}
    models = (gan.generator, gan.discriminator)
    before = [[np.array(w) for w in model.trainable_weights] for model in models]
    losses = gan.train_step(batch)
    assert all(np.isfinite(float(value)) for value in losses.values()), losses
    for model, weights in zip(models, before):
        after = [np.array(w) for w in model.trainable_weights]
        assert all(np.isfinite(w).all() for w in after), model.name
        assert all(np.any(a != b) for a, b in zip(after, weights)), f"{model.name}: a weight was not updated"


# ---- signals and data errors (in process)


@pytest.mark.slow
@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_ctrl_c_save_a_checkpoint_and_stop(signum, code, tiny_data_root, tmp_path):
    from dgan_tf.run import Run
    from dgan_tf.training.trainer import TrainingInterrupted

    trainer = tiny_trainer(tiny_config(tiny_data_root, iterations=6, checkpoint_every=100), tmp_path)
    previous = signal.getsignal(signum)

    def send_signal(t):
        if t.step == 2:
            os.kill(os.getpid(), signum)  # delivered while the loop runs; the iteration completes first

    with pytest.raises(TrainingInterrupted) as caught:
        trainer.train(on_step=send_signal)
    assert caught.value.step == 2 and caught.value.exit_code == code
    assert signal.Signals(signum).name in str(caught.value) and "run the same command again" in str(caught.value).lower()
    assert Run(tmp_path).latest_checkpoint().name == "ckpt-00000002.npz"
    assert not (tmp_path / "generator.keras").exists()
    assert signal.getsignal(signum) is previous


@pytest.mark.slow
def test_a_second_ctrl_c_stops_at_once(tiny_data_root, tmp_path):
    trainer = tiny_trainer(tiny_config(tiny_data_root, iterations=6, checkpoint_every=100), tmp_path)
    previous = signal.getsignal(signal.SIGINT)

    def press_twice(t):
        if t.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        trainer.train(on_step=press_twice)
    assert signal.getsignal(signal.SIGINT) is previous
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").glob("*.npz"))


@pytest.mark.slow
def test_an_image_that_becomes_unreadable_saves_a_checkpoint_first(own_data_root, tmp_path):
    from dgan_tf.data.pipeline import ImageError
    from dgan_tf.run import Run

    trainer = tiny_trainer(tiny_config(own_data_root, iterations=60, checkpoint_every=100), tmp_path / "run")
    images = sorted(Path(synthetic(own_data_root).images_dir("train")).iterdir())

    def damage(t):
        if t.step == 1:
            for path in images:
                path.write_bytes(b"not an image any more")

    with pytest.raises(ImageError) as caught:
        trainer.train(on_step=damage)
    message = str(caught.value)
    assert any(str(path) in message for path in images), message
    assert "is not a decodable image" in message and "pyav" not in message
    assert f"a checkpoint of iteration {trainer.step} is in" in message and "run the same command again" in message
    assert trainer.step >= 1 and Run(tmp_path / "run").latest_checkpoint().name == f"ckpt-{trainer.step:08d}.npz"


# ---- train.py: unusable checkpoints, malformed config.json (exit 2, no traceback)


def train_main(argv):
    from dgan_tf.cli.train import main

    return main(argv + ["--no-progress", "--no-xla"])


def test_train_refuses_to_start_over_unusable_checkpoints(tiny_data_root, tmp_path, capsys):
    from dgan_tf.run import Run

    Run(tmp_path).save_config(tiny_config(tiny_data_root))
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for step in (1, 2, 3):
        (folder / f"ckpt-{step:08d}.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 100)  # truncated zips
    (tmp_path / "generator.keras").write_bytes(b"the previous run's model")
    assert train_main(["--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "none of the 3 checkpoint file(s)" in err and "start over" in err and "Traceback" not in err
    for step in (1, 2, 3):
        assert f"ckpt-{step:08d}.npz" in err
    assert sorted(p.name for p in folder.iterdir()) == ["ckpt-00000001.npz", "ckpt-00000002.npz",
                                                        "ckpt-00000003.npz"]
    assert (tmp_path / "generator.keras").read_bytes() == b"the previous run's model"


def test_malformed_config_json_names_the_file_and_the_place(tmp_path, capsys):
    from dgan_tf.run import Run

    (tmp_path / "config.json").write_text('{"dataset": "synthetic",\n "width": 0.5,,}')
    with pytest.raises(ValueError, match=r"config.json is not valid JSON: Expecting property name enclosed in "
                                         r"double quotes at line 2, column 15"):
        Run(tmp_path).load_config()
    assert train_main(["--run", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "config.json") in err and "Traceback" not in err
    (tmp_path / "config.json").write_text('{"dataset": "synthetic"}')
    with pytest.raises(ValueError, match=r"config.json is not a valid run configuration"):
        Run(tmp_path).load_config()


def test_a_header_only_pair_file_is_named(own_data_root):
    from dgan_tf.data.pipeline import dataset_for_split

    data = synthetic(own_data_root)
    Path(data.pairs_csv("train")).write_text("from,to\n")
    with pytest.raises(ValueError, match=rf"pair file {data.pairs_csv('train')} has a header but no pairs"):
        dataset_for_split(data, "train", 2)


# ---- images


def test_find_bad_image_names_the_file_without_plugin_hints(tmp_path):
    import imageio.v3 as iio

    from dgan_tf.data.pipeline import find_bad_image

    (tmp_path / "a.jpg").write_bytes(b"garbage")
    path, reason = find_bad_image([str(tmp_path / "a.jpg")], (128, 64))
    assert path.endswith("a.jpg") and reason.startswith("is not a decodable image") and "pip" not in reason
    assert find_bad_image([str(tmp_path / "gone.jpg")], (128, 64))[1].startswith("is missing")
    iio.imwrite(tmp_path / "small.png", np.zeros((64, 64, 3), np.uint8))
    assert find_bad_image([str(tmp_path / "small.png")], "128x64") == (str(tmp_path / "small.png"),
                                                                        "has size 64x64, expected 128x64")


def test_score_dir_reads_16_bit_pngs_as_their_high_bits(tiny_data_root, tmp_path, capsys):
    """16-bit greyscale PNGs were read as their low byte: SSIM 0.000 with exit 0."""
    import imageio.v3 as iio

    from dgan_tf.cli.test import main
    from dgan_tf.data.annotations import read_pairs

    data = synthetic(tiny_data_root)
    pairs = read_pairs(data.pairs_csv("test"))
    for depth in (8, 16):
        folder = tmp_path / f"scored{depth}"
        folder.mkdir()
        for source, target in zip(pairs["from"], pairs["to"]):
            rgb = iio.imread(Path(data.images_dir("test")) / target).astype(np.float64) / 255.0
            luminance = rgb @ np.array([0.299, 0.587, 0.114])
            pixels = (np.round(luminance * 65535).astype(np.uint16) if depth == 16
                      else np.round(luminance * 255).astype(np.uint8))
            iio.imwrite(folder / f"{Path(source).stem}_{Path(target).stem}.png", pixels)
        assert main(["--score-dir", str(folder), "--dataset", "synthetic", "--data-root", tiny_data_root,
                     "--no-inception", "--no-progress"]) == 0
    ssim = {depth: json.loads((tmp_path / f"scored{depth}-scores" / "metrics.json").read_text())["rows"]
            [f"scored{depth}"]["ssim"] for depth in (8, 16)}
    assert ssim[8] > 0.3 and abs(ssim[16] - ssim[8]) < 0.01, ssim


# ---- test.py: the model file


@pytest.fixture
def run_with_model(tiny_data_root, tmp_path):
    from dgan_tf.run import Run

    run = tmp_path / "run"
    Run(run).save_config(tiny_config(tiny_data_root))
    return run


def test_malformed_or_truncated_keras_files_are_named(run_with_model, capsys):
    import zipfile

    from dgan_tf.cli.test import main
    from dgan_tf.models.generator import build_generator

    model = run_with_model / "generator.keras"
    build_generator((128, 64), width=WIDTH).save(model)
    truncated = model.read_bytes()[:5000]
    with zipfile.ZipFile(model, "w") as archive:  # a zip with a config.json Keras cannot use
        archive.writestr("config.json", json.dumps({"class_name": "Functional", "config": {"layers": 3}}))
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
    for content in (None, truncated):
        if content is not None:
            model.write_bytes(content)
        assert main(["--run", str(run_with_model), "--no-inception", "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"{model} is not a readable Keras model file (" in err and "Traceback" not in err, err
        assert "File not found" not in err


def test_a_generator_of_another_size_than_its_config_is_named(run_with_model, capsys):
    from dgan_tf.cli.test import main
    from dgan_tf.models.generator import build_generator

    build_generator((256, 256), width=WIDTH).save(run_with_model / "generator.keras")
    assert main(["--run", str(run_with_model), "--no-inception", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{run_with_model / 'generator.keras'} takes images of 256x256" in err
    assert f"{run_with_model / 'config.json'} says 128x64" in err


# ---- every tool that reads a generator file refuses a bad one the same way, naming it


@pytest.fixture(scope="module")
def damaged_models(tmp_path_factory):
    """{damage: run folder}: a config.json and a generator.keras damaged as a hostile probe damaged them."""
    import zipfile

    import keras

    from dgan_tf.models.generator import build_generator
    from dgan_tf.run import Run

    root = tmp_path_factory.mktemp("damaged")
    good = root / "good.keras"
    build_generator((128, 64), width=WIDTH).save(good)
    data = good.read_bytes()
    with zipfile.ZipFile(good) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
        weights = archive.getinfo("model.weights.h5")

    def flipped():
        damaged = bytearray(data)
        start = weights.header_offset + 30 + len(weights.filename) + 64
        damaged[start:start + 32] = bytes(b ^ 0xFF for b in damaged[start:start + 32])
        return bytes(damaged)

    def rezipped(config_text):
        buffer = root / "rezip.keras"
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, value in entries.items():
                archive.writestr(name, config_text if name == "config.json" else value)
        return buffer.read_bytes()

    config = json.loads(entries["config.json"])
    config["config"]["layers"][1] = {"module": "os", "class_name": "system", "registered_name": "system",
                                     "config": {"command": f"touch {root / 'ran'}"}}
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(root / "dense.keras")
    contents = {"flipped": flipped(), "truncated": data[:5000], "empty": b"",
                "config": rezipped(entries["config.json"][:51]), "os.system": rezipped(json.dumps(config)),
                "foreign": (root / "dense.keras").read_bytes()}
    folders = {}
    for damage, content in contents.items():
        folders[damage] = root / damage.replace(".", "_")
        folders[damage].mkdir()
        (folders[damage] / "generator.keras").write_bytes(content)
    return folders


MODEL_REFUSALS = {
    "flipped": r"generator.keras is not a readable Keras model file \(its entry model.weights.h5 is damaged\)",
    "truncated": r"generator.keras is not a readable Keras model file \(not a complete zip archive, 5000 bytes",
    "empty": r"generator.keras is not a readable Keras model file \(not a complete zip archive, 0 bytes",
    "config": r"generator.keras is not a readable Keras model file \(its entry config.json is not valid JSON: ",
    "os.system": r"generator.keras was refused: its config.json names os.system, which is neither a Keras class nor a "
                 r"dgan_tf layer; nothing in the file was loaded or run",
    "foreign": r"generator.keras is not a dgan_tf generator: it takes \(None, 4\) -> \(None, 2\)",
}


@pytest.mark.parametrize("damage", sorted(MODEL_REFUSALS))
def test_export_and_transfer_refuse_a_bad_generator_file_as_test_does(damage, damaged_models, tiny_data_root, capsys):
    """export.py and transfer.py gave BadZipFile, IndexError and KeyError tracebacks, "File not found" for a file that
    exists, and a JSON error without the file; test.py's checks now hold for all three."""
    from dgan_tf.cli import export, test, transfer
    from dgan_tf.run import Run
    from tests.serving_helpers import STANDING_POSE, write_openpose
    from dgan_tf.visualize import write_image_atomic

    folder = damaged_models[damage]
    work = folder.parent / "inputs"
    if not work.exists():
        work.mkdir()
        write_image_atomic(work / "photo.png", np.zeros((128, 64, 3), np.uint8))
        write_openpose(work / "pose.json", [STANDING_POSE])
    model = folder / "generator.keras"
    calls = {
        "export": lambda: export.main(["--run", str(model), "--output-dir", str(folder / "exports")]),
        "transfer": lambda: transfer.main(["--run", str(folder), "--source", str(work / "photo.png"), "--source-pose",
                                           str(work / "pose.json"), "--target-pose", str(work / "pose.json"),
                                           "--output-dir", str(folder / "out")]),
    }
    run_dir = folder.parent / f"run_{folder.name}"  # test.py needs a config.json beside the model
    if not run_dir.exists():
        run_dir.mkdir()
        Run(run_dir).save_config(tiny_config(tiny_data_root))
        shutil.copy(model, run_dir / "generator.keras")
    calls["test"] = lambda: test.main(["--run", str(run_dir), "--no-inception", "--no-ds", "--no-progress"])
    for tool, call in calls.items():
        assert call() == 2, tool
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and "File not found" not in err, (tool, err)
        assert re.search(MODEL_REFUSALS[damage], err), (tool, err)
    assert not (folder.parent / "ran").exists()
    assert not (folder / "exports" / "dgan" / "1").exists() and not (folder / "out").exists()


# ---- pretrained weights


def test_a_vgg_weights_file_that_is_not_vgg19s_is_named(tiny_data_root, tmp_path, capsys):
    """--vgg-weights of a garbage file gave h5py's "Unable to synchronously open file (file signature not found)"."""
    from dgan_tf.models.vgg import VGG19_NOTOP_FILENAME, VGG19_NOTOP_URL

    garbage = tmp_path / "vgg.h5"
    garbage.write_bytes(b"certainly not HDF5" * 100)
    run = tmp_path / "run"
    assert train_main(["--data-root", tiny_data_root, "--run", str(run), "--width", str(WIDTH), "--iterations", "1",
                       "--batch-size", "1", "--features", "vgg19_block2_conv1", "--vgg-weights", str(garbage)]) == 2
    err = capsys.readouterr().err
    assert f"error: {garbage} could not be loaded as VGG19 ImageNet weights (no top) (" in err, err
    assert f"expected {VGG19_NOTOP_FILENAME}, the file published at {VGG19_NOTOP_URL}" in err and "--vgg-weights" in err
    assert "Traceback" not in err and not run.exists()  # a refused start writes nothing


# ---- test.py --score-dir with pairs missing


def test_score_dir_names_missing_pairs_and_refuses_too_few(tiny_data_root, tmp_path, capsys):
    """Half the pair images scored half the pairs with exit 0, only the title saying so."""
    from dgan_tf.cli.test import main
    from dgan_tf.data.annotations import read_pairs

    data = synthetic(tiny_data_root)
    pairs = read_pairs(data.pairs_csv("test"))
    names = [f"{Path(a).stem}_{Path(b).stem}" for a, b in zip(pairs["from"], pairs["to"])]
    folder = tmp_path / "method"
    folder.mkdir()
    kept = names[: len(names) // 2]
    for name in kept:
        shutil.copy(Path(data.images_dir("test")) / pairs["to"].iloc[names.index(name)], folder / f"{name}.jpg")
    argv = ["--score-dir", str(folder), "--dataset", "synthetic", "--data-root", tiny_data_root, "--no-inception",
            "--no-ds", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    from dgan_tf.evaluation.protocol import MIN_SCORED_FRACTION

    assert len(kept) < MIN_SCORED_FRACTION * len(names)
    assert f"holds images for {len(kept)} of the {len(names)} pairs" in err and f"Missing: {names[len(kept)]}" in err
    assert "--allow-missing" in err and not (tmp_path / "method-scores").exists()
    assert main(argv + ["--allow-missing"]) == 0
    err = capsys.readouterr().err
    missing = len(names) - len(kept)
    assert f"warning: {missing} of the {len(names)} test pairs have no image ({names[len(kept)]}" in err
    assert f"Not scored: {missing} of the {len(names)} test pairs have no image" in \
        (tmp_path / "method-scores" / "metrics.md").read_text()


# ---- make_pairs.py


def test_make_pairs_refuses_to_overwrite_its_input_or_an_existing_output(tiny_data_root, tmp_path, capsys):
    from dgan_tf.cli.make_pairs import main

    annotations = tmp_path / "annotations.csv"
    shutil.copy(synthetic(tiny_data_root).annotation_csv("train"), annotations)
    original = annotations.read_bytes()
    for flag in ("--output", "--out"):
        assert main([str(annotations), flag, str(annotations), "--dataset", "synthetic", "--force"]) == 2
        assert "is the input annotation file" in capsys.readouterr().err
    assert annotations.read_bytes() == original
    alias = tmp_path / "alias.csv"
    alias.symlink_to(annotations)
    assert main([str(annotations), "--output", str(alias), "--dataset", "synthetic", "--force"]) == 2
    pairs = tmp_path / "pairs.csv"
    assert main([str(annotations), "--output", str(pairs), "--dataset", "synthetic"]) == 0
    assert main([str(annotations), "--output", str(pairs), "--dataset", "synthetic"]) == 2
    assert "exists; add --force to replace it" in capsys.readouterr().err
    assert main([str(annotations), "--output", str(pairs), "--dataset", "synthetic", "--force"]) == 0
    assert annotations.read_bytes() == original


# ---- kill -9 at several moments (subprocesses running train.py's main)

DRIVER = r"""
import io, os, sys, time
from pathlib import Path
data_root, out_dir, mode, at_step, marker, iterations = sys.argv[1:7]
at_step = int(at_step)
import dgan_tf.training.trainer as trainer_module
from dgan_tf.run import checkpoints

def hang():
    Path(marker).touch()
    time.sleep(300)  # the test kills us here

init, resume = trainer_module.Trainer.__init__, trainer_module.Trainer.resume

def eager_init(self, *args, **kwargs):
    init(self, *args, **dict(kwargs, run_eagerly=True))  # a traced step costs 20 s; eager is enough here

def patched_resume(self):
    resume(self)
    print(f"START {self.step}", flush=True)
    real_step = self.step_fn
    def step(batch):
        if self.step + 1 == at_step and mode == "step":
            hang()
        if self.step + 1 == at_step and mode == "signal":
            Path(marker).touch()
            time.sleep(3)  # SIGTERM arrives during this iteration
        return real_step(batch)
    self.step_fn = step
    return self

trainer_module.Trainer.__init__, trainer_module.Trainer.resume = eager_init, patched_resume
if mode == "write":  # half the file written and flushed, then killed
    real_write = checkpoints.write_arrays
    def write(file, arrays):
        if int(arrays["step"]) == at_step:
            buffer = io.BytesIO()
            real_write(buffer, arrays)
            file.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
            file.flush()
            os.fsync(file.fileno())
            hang()
        real_write(file, arrays)
    checkpoints.write_arrays = write
elif mode == "rename":  # the checkpoint renamed into place, latest.json not yet updated
    real_latest = checkpoints._write_latest
    def latest(folder, step, path):
        if step == at_step:
            hang()
        real_latest(folder, step, path)
    checkpoints._write_latest = latest
from dgan_tf.cli.train import main
sys.exit(main(["--dataset", "synthetic", "--data-root", data_root, "--run", out_dir, "--iterations",
               iterations, "--batch-size", "1", "--width", "0.0625", "--checkpoint-every", "1", "--sample-every",
               "1000", "--seed", "0", "--no-xla", "--no-progress"]))
"""


def start_driver(data_root, run_dir, mode, at_step, marker, iterations=8):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(REPO_ROOT), TF_CPP_MIN_LOG_LEVEL="2",
               CUDA_VISIBLE_DEVICES="")
    log = open(run_dir.parent / f"{mode}.log", "w+")
    process = subprocess.Popen([sys.executable, "-c", DRIVER, data_root, str(run_dir), mode, str(at_step),
                                str(marker), str(iterations)], stdout=log, stderr=subprocess.STDOUT, env=env,
                               cwd=REPO_ROOT)
    return process, log


def wait_for(marker, process, log, timeout=180):
    deadline = time.monotonic() + timeout
    while not marker.exists():
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"driver exited with {process.returncode} before the marker:\n{log.read()[-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("driver did not reach the kill moment in time")
        time.sleep(0.05)


def started_at(log):
    log.seek(0)
    text = log.read()
    lines = [line for line in text.splitlines() if line.startswith("START ")]
    assert lines, text[-3000:]
    return int(lines[-1].split()[1]), text


def check_folder(run_dir):
    """Every checkpoint file on disk is complete and readable; returns their steps and the partial files."""
    from dgan_tf.run import Run
    from dgan_tf.run.checkpoints import is_readable

    files = Run(run_dir).checkpoint_files()
    assert all(is_readable(path) for _, path in files), [p.name for _, p in files]
    partial = sorted(p.name for p in (run_dir / "checkpoints").iterdir() if p.name.endswith(".tmp"))
    return [step for step, _ in files], partial


@pytest.mark.slow
def test_kill_9_at_any_moment_resumes_from_the_newest_complete_checkpoint(tiny_data_root, tmp_path):
    """Killed while writing checkpoint 3, after renaming checkpoint 4 (latest.json still says 3), inside iteration 6;
    then SIGTERM inside iteration 7: each restart resumes from the newest complete checkpoint (at most the one
    iteration in flight is lost, checkpoint_every=1), no partial file survives a restart, SIGTERM saves and exits 143."""
    run_dir = tmp_path / "run"
    stages = [("write", 3, 0), ("rename", 4, 2), ("step", 6, 4), ("signal", 7, 5)]
    previous_partial = []
    for mode, at_step, expected_start in stages:
        marker = tmp_path / f"{mode}.marker"
        process, log = start_driver(tiny_data_root, run_dir, mode, at_step, marker)
        try:
            wait_for(marker, process, log)
            if mode == "signal":
                process.send_signal(signal.SIGTERM)
                assert process.wait(timeout=120) == 143
            else:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        start, text = started_at(log)
        assert start == expected_start, (mode, text[-3000:])
        steps, partial = check_folder(run_dir)
        assert not set(previous_partial) & set(partial), "a partial file of the previous kill survived the restart"
        if mode == "write":
            assert steps == [1, 2] and len(partial) == 1 and partial[0].startswith(".ckpt-00000003.npz.")
        elif mode == "rename":
            assert steps[-1] == 4
            assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["step"] == 3
        elif mode == "step":
            assert steps[-1] == 5
        else:
            assert steps[-1] == 7 and "SIGTERM received" in text and "Traceback" not in text
        previous_partial = partial
