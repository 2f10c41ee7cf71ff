"""The run folder's room: one layout, one checked loader for config.json and generator.keras, one flag (--run)."""

import zipfile

import keras
import pytest

from dgan_tf.config import build_run_config
from dgan_tf.run import GeneratorFileError, Run

WIDTH = 0.0625


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    """A run folder holding config.json and a tiny generator.keras (never trained)."""
    from dgan_tf.build import generator_of

    run = Run(tmp_path_factory.mktemp("run"))
    config = build_run_config("synthetic", "dsc", width=WIDTH, data_root=str(run.folder / "data"))
    run.save_config(config)
    run.save_generator(generator_of(config))
    return run


def test_the_layout_is_named_in_one_place(tmp_path):
    run = Run(tmp_path)
    assert (run.config_path, run.generator_path) == (tmp_path / "config.json", tmp_path / "generator.keras")
    assert (run.checkpoint_dir, run.samples_dir, run.logs_dir, run.test_dir) == (
        tmp_path / "checkpoints", tmp_path / "samples", tmp_path / "logs", tmp_path / "test")
    assert run.checkpoint_path(12) == tmp_path / "checkpoints" / "ckpt-00000012.npz"
    assert run.sample_path(3) == tmp_path / "samples" / "step-00000003.png"
    assert run.latest_sample_path == tmp_path / "samples" / "latest.png"


def test_open_takes_a_run_folder_or_its_keras_file_and_names_what_is_missing(saved_run, tmp_path):
    assert Run.open(saved_run.folder) == saved_run
    other = Run.open(saved_run.generator_path)
    assert other.folder == saved_run.folder and other.generator_path == saved_run.generator_path
    with pytest.raises(FileNotFoundError, match=r"missing not found: give a training run folder"):
        Run.open(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match=r"gone.keras not found"):
        Run.open(tmp_path / "gone.keras")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="is a file, not a run folder"):
        Run.open(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        Run.open(tmp_path).load_config()


def test_load_model_checks_the_file_the_generator_and_the_size(saved_run, tmp_path):
    generator = saved_run.load_model()
    assert tuple(generator.inputs[0].shape[1:3]) == (128, 64)
    broken = Run(tmp_path / "broken")
    broken.folder.mkdir()
    broken.generator_path.write_bytes(saved_run.generator_path.read_bytes()[:3000])
    with pytest.raises(GeneratorFileError, match=r"generator.keras is not a readable Keras model file \(not a complete"):
        broken.load_model()
    damaged = bytearray(saved_run.generator_path.read_bytes())
    with zipfile.ZipFile(saved_run.generator_path) as archive:
        info = archive.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + 64
    damaged[start:start + 32] = bytes(b ^ 0xFF for b in damaged[start:start + 32])
    broken.generator_path.write_bytes(bytes(damaged))
    with pytest.raises(GeneratorFileError, match="its entry model.weights.h5 is damaged"):
        broken.load_model()
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(broken.generator_path)
    with pytest.raises(GeneratorFileError, match=r"is not a dgan_tf generator: it takes \(None, 4\)"):
        broken.load_model()
    saved_run.save_config(saved_run.load_config().replace(image_size=(256, 256)))
    try:
        with pytest.raises(GeneratorFileError, match=r"takes images of 128x64, but the run's .*config.json says 256x256"):
            saved_run.load_model()
    finally:
        saved_run.save_config(saved_run.load_config().replace(image_size=(128, 64)))


def test_save_generator_is_atomic_and_partial_files_are_cleared(saved_run, tmp_path):
    run = Run(tmp_path / "new")
    path = run.save_generator(saved_run.load_model())
    assert path == run.generator_path and path.is_file()
    assert sorted(p.name for p in run.folder.iterdir()) == ["generator.keras"]  # no temporary left
    partial = [run.folder / ".generator.tmp.keras", run.folder / ".config.json.0a1b2c3d.tmp",
               run.samples_dir / ".latest.png.abcdefgh.tmp", run.checkpoint_dir / ".latest.json.abcdefgh.tmp"]
    for file in partial:
        file.parent.mkdir(exist_ok=True)
        file.write_bytes(b"\x00")
    assert sorted(run.remove_partial_files()) == sorted(partial)


def test_every_program_names_a_run_with_run_and_keeps_the_old_flags_quietly(capsys):
    from dgan_tf.cli import export, test, train, transfer

    programs = {train: "--output-dir", test: "--checkpoint", export: "--checkpoint", transfer: "--checkpoint"}
    extra = {transfer: ["--source", "a.png", "--source-pose", "a.json", "--target-pose", "b.json",
                        "--output-dir", "out"]}
    for module, old in programs.items():
        for flag in ("--run", old):
            assert module.parse_args([flag, "RUN"] + extra.get(module, [])).run == "RUN", (module, flag)
        with pytest.raises(SystemExit):
            module.parse_args(["--help"])
        shown = capsys.readouterr().out
        assert "--run RUN" in shown and old not in shown, module.__name__
    for module in (export, transfer):  # both need a model
        with pytest.raises(SystemExit):
            module.parse_args(extra.get(module, []))
        assert "the following arguments are required: --run" in capsys.readouterr().err


def test_a_refused_start_writes_nothing(tiny_data_root, tmp_path, capsys):
    """Checkpoints of a run whose config.json was deleted: train.py refuses, and does not write a config.json."""
    from dgan_tf.cli.train import main

    run = Run(tmp_path / "run")
    args = ["--data-root", tiny_data_root, "--run", str(run.folder), "--width", str(WIDTH), "--iterations", "1",
            "--batch-size", "1", "--no-progress", "--no-xla"]
    run.checkpoint_dir.mkdir(parents=True)
    (run.checkpoint_dir / "ckpt-00000001.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 64)
    assert main(args) == 2
    assert "none of the 1 checkpoint file(s)" in capsys.readouterr().err
    assert not run.config_path.exists()
    assert sorted(p.name for p in run.folder.iterdir()) == ["checkpoints"]


# ---- starting a trainer: one per folder, never over a finished model, never backwards


def train_args(data_root, run, *extra):
    return ["--data-root", data_root, "--run", str(run.folder), "--width", str(WIDTH), "--batch-size", "1",
            "--features", "pixels", "--no-progress", "--no-xla", *extra]


def test_a_second_trainer_is_refused_naming_the_first(tiny_data_root, tmp_path, capsys):
    import os

    from dgan_tf.cli.train import main

    run = Run(tmp_path / "run")
    with run.lock():  # the first trainer (another open file of this process: its flock refuses the second)
        assert main(train_args(tiny_data_root, run, "--iterations", "1")) == 2
        err = capsys.readouterr().err
        assert f"{run.folder} is in use by another trainer: process {os.getpid()} on this machine" in err
        assert f"lock file {run.folder / 'train.lock'}" in err and "Traceback" not in err
        assert sorted(p.name for p in run.folder.iterdir()) == ["train.lock"]
    assert not run.folder.exists()  # the lock made the folder, and nothing else was written: both are gone


def test_a_lock_whose_holder_is_gone_is_replaced_with_a_note(tmp_path):
    import json
    import os
    import socket
    import subprocess
    import sys
    import time

    from dgan_tf.run import RunInUse
    from dgan_tf.run.lock import LOCK_FILE, STALE_AFTER_S

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    lock_file = tmp_path / LOCK_FILE
    lock_file.write_text(json.dumps({"pid": int(gone.stdout), "host": socket.gethostname()}))
    with Run(tmp_path).lock() as lock:
        assert f"replaced the lock of process {int(gone.stdout)} on this machine" in lock.replaced
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
    assert not lock_file.exists()
    lock_file.write_text(json.dumps({"pid": 4321, "host": "elsewhere", "started": "2030-01-01T00:00:00+00:00"}))
    with pytest.raises(RunInUse, match=r"process 4321 on host elsewhere \(since 2030-01-01.*delete .*train.lock "
                                       r"\(a lock of another host counts as stale 60 minutes after its last refresh"):
        Run(tmp_path).lock().acquire()
    old = time.time() - STALE_AFTER_S - 60
    os.utime(lock_file, (old, old))
    with Run(tmp_path).lock() as lock:
        assert "process 4321 on host elsewhere" in lock.replaced


def test_a_finished_run_without_checkpoints_is_not_trained_again_from_zero(tiny_data_root, tmp_path, capsys):
    """checkpoints/ deleted after the run finished: the same command again would train from 0 and replace the model."""
    from dgan_tf.cli.train import main

    run = Run(tmp_path / "run")
    run.save_config(build_run_config("synthetic", "dsc", width=WIDTH, features="pixels", batch_size=1,
                                     iterations=2, data_root=tiny_data_root))
    run.generator_path.write_bytes(b"the finished model")
    config = run.config_path.read_text()
    assert main(train_args(tiny_data_root, run)) == 2
    err = capsys.readouterr().err
    assert f"{run.generator_path} holds a finished run's generator, but {run.checkpoint_dir} holds no checkpoint" in err
    assert "would start again at iteration 0 and replace it" in err and "move" in err
    assert run.generator_path.read_bytes() == b"the finished model" and run.config_path.read_text() == config
    assert sorted(p.name for p in run.folder.iterdir()) == ["config.json", "generator.keras"]


def test_fewer_iterations_than_done_are_refused_and_as_many_say_so(tiny_data_root, tmp_path, capsys):
    from dgan_tf.build import build_trainer
    from dgan_tf.cli.train import main

    run = Run(tmp_path / "run")
    config = build_run_config("synthetic", "dsc", width=WIDTH, features="pixels", batch_size=1, iterations=6,
                              data_root=tiny_data_root)
    trainer = build_trainer(config, run, xla=False, progress=False, run_eagerly=True)
    trainer.step = 6  # a run at iteration 6 (its checkpoint is what counts, not how it got there)
    trainer.save_checkpoint()
    saved = run.config_path.read_text()
    assert main(train_args(tiny_data_root, run, "--iterations", "4")) == 2
    err = capsys.readouterr().err
    assert f"the run in {run.folder} is already at iteration 6, past the 4 iterations asked for" in err
    assert run.config_path.read_text() == saved and not run.has_generator()
    assert main(train_args(tiny_data_root, run)) == 0
    out = capsys.readouterr().out
    assert "nothing to train: the run was already at iteration 6 of 6" in out and "done: \n" not in out
    assert run.has_generator()
