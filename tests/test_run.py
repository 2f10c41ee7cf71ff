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


def test_load_generator_checks_the_file_the_generator_and_the_size(saved_run, tmp_path):
    generator = saved_run.load_generator()
    assert tuple(generator.inputs[0].shape[1:3]) == (128, 64)
    broken = Run(tmp_path / "broken")
    broken.folder.mkdir()
    broken.generator_path.write_bytes(saved_run.generator_path.read_bytes()[:3000])
    with pytest.raises(GeneratorFileError, match=r"generator.keras is not a readable Keras model file \(not a complete"):
        broken.load_generator()
    damaged = bytearray(saved_run.generator_path.read_bytes())
    with zipfile.ZipFile(saved_run.generator_path) as archive:
        info = archive.getinfo("model.weights.h5")
    start = info.header_offset + 30 + len(info.filename) + 64
    damaged[start:start + 32] = bytes(b ^ 0xFF for b in damaged[start:start + 32])
    broken.generator_path.write_bytes(bytes(damaged))
    with pytest.raises(GeneratorFileError, match="its entry model.weights.h5 is damaged"):
        broken.load_generator()
    inputs = keras.Input((4,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(broken.generator_path)
    with pytest.raises(GeneratorFileError, match=r"is not a dgan_tf generator: it takes \(None, 4\)"):
        broken.load_generator()
    saved_run.save_config(saved_run.load_config().replace(image_size=(256, 256)))
    try:
        with pytest.raises(GeneratorFileError, match=r"takes images of 128x64, but the run's .*config.json says 256x256"):
            saved_run.load_generator()
    finally:
        saved_run.save_config(saved_run.load_config().replace(image_size=(128, 64)))


def test_save_generator_is_atomic_and_partial_files_are_cleared(saved_run, tmp_path):
    run = Run(tmp_path / "new")
    path = run.save_generator(saved_run.load_generator())
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
