"""The guard every program shares: output paths checked before any work (dgan_tf.outputs), full disks and refused
writes named (dgan_tf.files.write_error, TensorFlow's errors too), and Ctrl-C as one line with exit 130
(run_reporting_errors inside main, scripts/_launch.py while the package loads)."""

import errno
import importlib
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO_ROOT


def test_an_output_file_is_not_a_folder_an_input_or_an_existing_file_without_force(tmp_path):
    from dgan_tf.outputs import OutputPathError, check_output_file

    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    source = tmp_path / "source.csv"
    source.write_text("keep")
    (tmp_path / "alias.csv").symlink_to(source)
    cases = {
        tmp_path / "folder": "--output .*folder is a folder; give the path of the file to write",
        tmp_path / "file" / "out.csv": "--output .*out.csv cannot be written: .*file is a file, not a folder",
        source: r"--output .*source.csv is the input annotation file \(.*source.csv\): writing there would replace",
        tmp_path / "alias.csv": "is the input annotation file",
        tmp_path / "file": r"--output .*file exists; add --force to replace it",
    }
    for path, message in cases.items():
        with pytest.raises(OutputPathError, match=message):
            check_output_file(path, "--output", inputs=[("the input annotation file", source)])
    assert check_output_file(tmp_path / "file", "--output", force=True) == tmp_path / "file"
    assert check_output_file(tmp_path / "new" / "deeper.csv", "--output") == tmp_path / "new" / "deeper.csv"
    assert source.read_text() == "keep"


def test_an_output_folder_is_not_a_file_and_what_goes_inside_has_the_right_kind(tmp_path):
    from dgan_tf.outputs import OutputPathError, check_output_folder

    (tmp_path / "file").write_text("x")
    run = tmp_path / "run"
    (run / "config.json").mkdir(parents=True)
    (run / "checkpoints").write_text("x")
    with pytest.raises(OutputPathError, match="--run .*file is a file, not a folder; give a folder"):
        check_output_folder(tmp_path / "file", "--run")
    with pytest.raises(OutputPathError, match="cannot be written: .*file is a file, not a folder"):
        check_output_folder(tmp_path / "file" / "run", "--run")
    with pytest.raises(OutputPathError, match="checkpoints is a file, but this program writes a folder of that name"):
        check_output_folder(run, "--run", folders=("checkpoints",))
    with pytest.raises(OutputPathError, match="config.json is a folder, but this program writes a file of that name"):
        check_output_folder(run, "--run", files=("config.json",))
    photo = tmp_path / "000_photo.png"
    photo.write_text("x")
    with pytest.raises(OutputPathError, match="is the --source photo"):
        check_output_folder(tmp_path, "--output-dir", files=("000_photo.png",),
                            inputs=[("the --source photo", photo)])


def test_a_folder_that_cannot_be_written_is_named_before_any_work(tmp_path, monkeypatch):
    from dgan_tf.files import WriteError
    from dgan_tf.outputs import check_output_file

    monkeypatch.setattr(os, "access", lambda path, mode: str(path) != str(tmp_path))  # root may write anywhere
    with pytest.raises(WriteError, match=rf"cannot write .*out.csv: the folder {tmp_path} is read-only or not "
                                         "writable"):
        check_output_file(tmp_path / "new" / "out.csv", "--output")


def test_tensorflows_full_disk_and_permission_errors_become_write_errors(tmp_path):
    import tensorflow as tf

    from dgan_tf.files import WriteError, write_error

    full = tf.errors.ResourceExhaustedError(None, None, "/x/variables/part-0; No space left on device [Op:SaveV2]")
    error = write_error(full, tmp_path / "dgan" / "1")
    assert isinstance(error, WriteError) and error.errno == errno.ENOSPC
    assert str(error).startswith(f"No space left on device while writing {tmp_path / 'dgan' / '1'}; free space")
    refused = write_error(tf.errors.PermissionDeniedError(None, None, "/x: Permission denied"), tmp_path / "a")
    assert isinstance(refused, WriteError) and "read-only or not writable" in str(refused)
    other = tf.errors.InvalidArgumentError(None, None, "shape mismatch")
    assert write_error(other, tmp_path / "a") is other


# ---- every program that writes checks its outputs first (before data, models or the network are touched)


TRANSFER = ["--run", "{tmp}/no-run", "--source", "{tmp}/photo.png", "--source-pose", "{tmp}/pose.json",
            "--target-pose", "{tmp}/pose.json"]
TRAIN = ["--data-root", "{data}", "--width", "0.0625", "--iterations", "1", "--batch-size", "1", "--features",
         "pixels", "--no-xla", "--no-progress"]
# (program, argv, expected message): each output sits under a file, is of the wrong kind, or is an input.
OUTPUT_CASES = {
    "train --run a file": ("train", ["--run", "{tmp}/a_file", *TRAIN], "--run .*a_file is a file, not a folder"),
    "train checkpoints a file": ("train", ["--run", "{tmp}/run", *TRAIN],
                                 "run/checkpoints is a file, but this program writes a folder"),
    "test --output-dir under a file": (
        "test", ["--score-dir", "{tmp}", "--dataset", "synthetic", "--data-root", "{data}", "--output-dir",
                 "{tmp}/a_file/scores", "--no-progress"], "--output-dir .*a_file/scores cannot be written: "),
    "export --output-dir a file": ("export", ["--run", "{tmp}/no-run", "--output-dir", "{tmp}/a_file"],
                                   "--output-dir .*a_file is a file"),
    "export model folder a file": ("export", ["--run", "{tmp}/no-run", "--output-dir", "{tmp}", "--model-name",
                                              "a_file"], "a_file is a file, but this program writes a folder"),
    "transfer --output-dir under a file": ("transfer", [*TRANSFER, "--output-dir", "{tmp}/a_file/out"],
                                           "--output-dir .*a_file/out cannot be written"),
    "transfer --write-request an input": ("transfer", [*TRANSFER, "--write-request", "{tmp}/pose.json"],
                                          "--write-request .*pose.json is the --source-pose file"),
    "make_pairs --output under a file": ("make_pairs", ["{tmp}/annotations.csv", "--output", "{tmp}/a_file/p.csv",
                                                        "--dataset", "synthetic"],
                                         "--output .*p.csv cannot be written"),
    "make_synthetic --output-dir a file": ("make_synthetic", ["--output-dir", "{tmp}/a_file"],
                                           "--output-dir .*a_file is a file, not a folder"),
    "prepare_dataset --data-root a file": ("prepare_dataset", ["market", "--source", "{tmp}", "--data-root",
                                                               "{tmp}/a_file"], "--data-root .*a_file is a file"),
    "convert_original --run a file": ("convert_original", ["--generator-weights", "{tmp}/g.h5", "--dataset", "market",
                                                           "--variant", "dsc", "--run", "{tmp}/a_file"],
                                      "--run .*a_file is a file, not a folder"),
    "estimate_keypoints --output an input": ("estimate_keypoints", ["{tmp}/photo.png", "--output", "{tmp}/photo.png",
                                                                    "--force"],
                                             r"--output .*photo.png is one of the input images \(.*photo.png\)"),
}


@pytest.fixture
def program_inputs(tmp_path):
    from dgan_tf.visualize import write_image_atomic
    from tests.serving_helpers import STANDING_POSE, write_openpose

    (tmp_path / "a_file").write_text("not a folder")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoints").write_text("not a folder")
    write_image_atomic(tmp_path / "photo.png", np.zeros((128, 64, 3), np.uint8))
    write_openpose(tmp_path / "pose.json", [STANDING_POSE])
    (tmp_path / "annotations.csv").write_text("name:keypoints_y:keypoints_x\n")
    return tmp_path


@pytest.mark.parametrize("case", sorted(OUTPUT_CASES))
def test_every_program_that_writes_checks_its_outputs_before_any_work(case, program_inputs, tiny_data_root, capsys):
    program, argv, message = OUTPUT_CASES[case]
    module = importlib.import_module(f"dgan_tf.cli.{program}")
    assert module.main([a.format(tmp=program_inputs, data=tiny_data_root) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert (program_inputs / "a_file").read_text() == "not a folder"
    assert sorted(p.name for p in (program_inputs / "run").iterdir()) == ["checkpoints"]


# ---- Ctrl-C


PROGRAMS = ("train", "test", "export", "transfer", "estimate_keypoints", "make_pairs", "make_synthetic",
            "prepare_dataset", "convert_original", "demo")


@pytest.mark.parametrize("program", PROGRAMS)
def test_ctrl_c_inside_any_program_is_one_line_and_exit_130(program, monkeypatch, capsys):
    module = importlib.import_module(f"dgan_tf.cli.{program}")

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "run", interrupted)
    argv = {"train": [], "test": [], "export": ["--run", "r"], "make_synthetic": ["--output-dir", "o"],
            "transfer": ["--run", "r", "--source", "s", "--source-pose", "p", "--target-pose", "t",
                         "--output-dir", "o"],
            "estimate_keypoints": ["a.png", "--output", "a.csv"], "make_pairs": ["a.csv", "--output", "p.csv",
                                                                             "--dataset", "synthetic"],
            "prepare_dataset": ["market", "--source", "s"], "demo": ["p.jpg", "--target", "t"],
            "convert_original": ["--generator-weights", "g.h5", "--dataset", "market", "--variant", "dsc",
                                 "--run", "r"]}[program]
    try:
        assert module.main(argv) == 130
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")
    err = capsys.readouterr().err.strip()
    assert err.startswith("stopped: interrupted") and len(err.splitlines()) == 1, err
    if program == "train":
        assert "resume from the last complete checkpoint" in err


def test_ctrl_c_while_a_script_loads_is_one_line_and_exit_130(tmp_path):
    """SIGINT while scripts/make_pairs.py imports Keras and TensorFlow (seconds); should it land later, inside main,
    the answer is the same."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen([sys.executable, "scripts/make_pairs.py", str(tmp_path / "a.csv"), "--output",
                                str(tmp_path / "p.csv"), "--dataset", "synthetic"], cwd=REPO_ROOT, env=env,
                               stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # Python's own start is over (its SIGINT handler set); importing dgan_tf takes seconds
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err[-2000:]
    lines = [line for line in err.splitlines() if line.startswith(("stopped", "Traceback", "KeyboardInterrupt"))]
    assert len(lines) == 1 and lines[0].startswith("stopped: interrupted"), err[-2000:]
