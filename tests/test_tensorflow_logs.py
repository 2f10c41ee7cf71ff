"""TensorFlow's C++ log lines: hidden from every program by default (the start-up notices, cuInit, the grappler
remapper), shown with --verbose; everything else a program prints is kept."""

import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from dgan_tf.tensorflow_logs import ABSL_HEADER, LOG_LINE, verbose_requested, without_hidden_lines
from tests.conftest import REPO_ROOT
from tests.serving_helpers import STANDING_POSE, make_tiny_run

# What TensorFlow 2.21 printed on a 2-core CPU for `python scripts/test.py ...` (ids shortened), with a Python
# warning and an error of ours among them.
CAPTURED = """\
WARNING: All log messages before absl::InitializeLog() is called are written to STDERR
I0000 00:00:1796425497.640638    4279 port.cc:153] oneDNN custom operations are on. You may see slightly ...
I0000 00:00:1796425497.640939    4279 cudart_stub.cc:31] Could not find cuda drivers on your machine, GPU ...
I0000 00:00:1796425497.680958    4279 cpu_feature_guard.cc:227] This TensorFlow binary is optimized to use ...
To enable the following instructions: AVX2 AVX512F AVX512_VNNI AVX512_BF16 FMA, in other operations, rebuild ...
/x/keras/src/export.py:12: UserWarning: a Python warning
  warnings.warn("a Python warning")
E0000 00:00:1796425500.947334    4279 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: ...
E0000 00:00:1796425504.959913    4279 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: Mutation::Apply ...
F0000 00:00:1796425505.000000    4279 something.cc:1] Check failed: a fatal error
error: runs/x not found
"""
PYTHON_LINES = ["/x/keras/src/export.py:12: UserWarning: a Python warning\n", '  warnings.warn("a Python warning")\n',
                "error: runs/x not found\n"]


def tensorflow_lines(text):
    return [line for line in text.splitlines() if LOG_LINE.match(line) or line.startswith(ABSL_HEADER)
            or line.startswith("To enable the following instructions")]


def test_the_level_applies_to_the_lines_printed_before_absl_was_initialised():
    lines = CAPTURED.splitlines(keepends=True)
    assert without_hidden_lines(CAPTURED, 3) == "".join(PYTHON_LINES[:2] + [lines[-2]] + PYTHON_LINES[2:])
    assert without_hidden_lines(CAPTURED, 2) == "".join(PYTHON_LINES[:2] + lines[7:])
    assert without_hidden_lines(CAPTURED, 0) == CAPTURED


def test_verbose_is_asked_for_on_the_command_line_or_in_the_environment():
    assert verbose_requested(["--run", "x", "--verbose"], {}) and verbose_requested([], {"DGAN_VERBOSE": "1"})
    assert not verbose_requested(["--run", "x"], {"DGAN_VERBOSE": "0"}) and not verbose_requested([], {})


def test_a_program_shows_no_tensorflow_line_and_verbose_shows_them(tmp_path):
    """transfer.py on a tiny run: TensorFlow loads, starts its devices (cuInit) and optimises the generator's graph
    (the remapper): the user sees the program's own lines only. With --verbose, TensorFlow's lines come back."""
    from dgan_tf.data.annotations import write_annotations
    from dgan_tf.visualize import write_image_atomic

    make_tiny_run(tmp_path / "run")
    write_image_atomic(tmp_path / "photo.png", np.full((128, 64, 3), 90, np.uint8))
    poses = np.stack([STANDING_POSE, STANDING_POSE + np.where(STANDING_POSE >= 0, 2, 0)]).astype(np.int64)
    write_annotations(tmp_path / "poses.csv", ["photo.png", "target.png"], poses)  # a target besides the source
    env = {name: value for name, value in os.environ.items() if name not in ("TF_CPP_MIN_LOG_LEVEL", "DGAN_VERBOSE")}
    command = [sys.executable, "scripts/transfer.py", "--run", tmp_path / "run", "--source", tmp_path / "photo.png",
               "--source-pose", f"{tmp_path / 'poses.csv'}:photo.png", "--target-pose", tmp_path / "poses.csv",
               "--output-dir", tmp_path / "out"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "1 images of photo.png" in done.stdout and (tmp_path / "out" / "000_target.png").is_file()
    assert not tensorflow_lines(done.stderr), done.stderr

    done = subprocess.run([sys.executable, "scripts/export.py", "--help", "--verbose"], capture_output=True,
                          text=True, timeout=300, cwd=REPO_ROOT, env=env)
    assert done.returncode == 0 and "--verbose" in done.stdout
    assert tensorflow_lines(done.stderr), done.stderr


@pytest.mark.parametrize("program", ["train", "test", "export", "transfer", "make_pairs", "make_synthetic",
                                     "prepare_dataset"])
def test_every_program_takes_verbose(program, capsys):
    """(estimate_keypoints runs in the pose environment, without TensorFlow: its lines are MediaPipe's.)"""
    module = importlib.import_module(f"dgan_tf.cli.{program}")
    with pytest.raises(SystemExit) as stopped:
        module.main(["--help"])
    assert stopped.value.code == 0 and "--verbose" in capsys.readouterr().out
