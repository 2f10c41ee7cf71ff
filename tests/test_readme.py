"""The README's commands run as written, from the repository root of a fresh clone, in `.venv`.

Every command of the README's ```bash and ```python blocks is either run here (RUN, the cheap ones, about 30 s
together: a --help, the Python API, a transfer, the OpenPose stand-ins, a small synthetic set and its pairs) or
listed in NOT_RUN with the reason. A command added to the README, or changed, that is in neither fails the test:
then run it as a new user would and list it.

The clone is a temporary folder of links to the repository's tracked files and to `.venv` (no data/, runs/,
outputs/, exports/). The one shell block (activate, then --help) runs in bash without PYTHONPATH, as a user's shell;
the others run in this process (`python scripts/NAME.py ARGS` as that script with those arguments, Python code
as it is), after the test writes an untrained tiny run where the README's tiny run and main job would be.
"""

import contextlib
import io
import os
import re
import runpy
import shlex
import shutil
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import REPO_ROOT
from tests.serving_helpers import make_tiny_run

EXPORT_NEEDED = "needs the export of `python scripts/export.py --run runs/tiny` (tests/test_export.py exports a " \
                "tiny run and serves it end to end in the slow tier)"
PAPER_FILES = "needs the authors' released weight files (not reachable here); tests/test_convert_original.py and " \
              "tests/test_original_parity.py convert files of the original's networks written in the tests"
NOT_RUN = {
    "export TF_CONFIG='{\"cluster\": {\"worker\": [\"node1:12345\", \"node2:12345\"]}, \"task\": {\"type\": \"worker\", "
    "\"index\": 0}}'": "two machines; tests/test_scale_out.py runs two workers on localhost from a TF_CONFIG",
    "python scripts/train.py --dataset fashion --run /shared/runs/fashion-dsc":
        "needs DeepFashion and two machines",
    "KERAS_BACKEND=jax python scripts/train.py --dataset fashion --run /shared/runs/fashion-dsc --coordinator "
    "node1:12345 --num-processes 2 --process-id 0": "needs DeepFashion and two machines; tests/test_scale_out.py runs "
                                                    "two JAX processes on localhost",
    "python scripts/test.py --run runs/market-full --shard 2/4": "needs a Market run; tests/test_scale_out.py merges "
                                                                  "shards of a tiny run",
    "python scripts/test.py --merge runs/market-full/test/shard-1-of-4 runs/market-full/test/shard-2-of-4 "
    "runs/market-full/test/shard-3-of-4 runs/market-full/test/shard-4-of-4": "needs the four shards of a Market run",
    "bash scripts/with_env.sh python scripts/train.py": "the main job, 4 min 33 s",
    "bash scripts/with_env.sh python -m pytest -q -n 2 --dist worksteal --all-tiers": "the test suite itself",
    "bash scripts/with_env.sh python scripts/test.py --run runs/synthetic-dsc --no-inception":
        "needs the trained main job; tests/test_first_use.py runs test.py on a copied tiny run without its data",
    "python scripts/train.py --dataset market --variant full": "needs Market-1501, and 89,000 iterations",
    "python scripts/train.py --dataset fashion --variant full": "needs DeepFashion, and 89,000 iterations",
    "python scripts/train.py --dataset fashion --variant dsc --iterations 20000 --run runs/f-dsc": "needs DeepFashion",
    "KERAS_BACKEND=jax python scripts/train.py": "trains 400 iterations (tests/test_training.py trains on JAX)",
    "python scripts/train.py --run runs/tiny --iterations 20 --width 0.125 --no-progress":
        "1.5 min of training; the test writes an untrained tiny runs/tiny instead",
    "python scripts/export.py --run runs/tiny": "tests/test_export.py exports a tiny run (slow tier)",
    "saved_model_cli show --dir exports/dgan/1 --tag_set serve --signature_def serving_default": EXPORT_NEEDED,
    "docker run -p 8501:8501 --mount type=bind,source=$PWD/exports/dgan,target=/models/dgan -e MODEL_NAME=dgan -t "
    "tensorflow/serving": "TF Serving is not installed here",
    "python scripts/transfer.py --run exports/dgan --source notebooks/example_photos/source-image.jpg --source-pose "
    "notebooks/example_photos/annotation.csv:source-image.jpg --target-pose notebooks/example_photos/annotation.csv:"
    "frame_000.jpg --write-request outputs/request.json": EXPORT_NEEDED,
    "curl -s -X POST http://localhost:8501/v1/models/dgan:predict -d @outputs/request.json -o outputs/response.json":
        "needs a TF Serving server",
    "python -c \"import json, numpy as np, imageio.v3 as iio; iio.imwrite('outputs/generated.png', "
    "np.asarray(json.load(open('outputs/response.json'))['predictions'][0], np.uint8))\"":
        "needs the server's response.json",
    "import grpc, tensorflow as tf": "needs a TF Serving server, and the caller's arrays (images, source, targets)",
    "import numpy as np, tensorflow as tf": EXPORT_NEEDED,
    "python scripts/transfer.py --run exports/dgan --source notebooks/example_photos/source-image.jpg --source-pose "
    "notebooks/example_photos/annotation.csv:source-image.jpg --target-pose outputs/openpose-walk --output-dir "
    "outputs/transfer-walk --gif": EXPORT_NEEDED,
    "bash scripts/with_pose_env.sh python scripts/estimate_keypoints.py notebooks/example_photos --output "
    "outputs/example-annotation.csv": "the pose environment (built on first use, under a minute); "
                                      "tests/test_keypoint_estimation.py runs the estimator",
    "python scripts/prepare_dataset.py market --source /path/to/Market-1501-v15.09.15": "needs Market-1501",
    "python scripts/prepare_dataset.py fashion --source /path/to/In-shop/img --annotations-dir DIR":
        "needs DeepFashion",
    "python scripts/make_pairs.py data/market-annotation-train.csv --output data/market-pairs-train.csv "
    "--dataset market": "needs Market-1501's annotations",
    "python scripts/make_synthetic.py": "2,000 images (about 10 s); the same program runs below on 40",
    "python scripts/demo.py notebooks/example_photos/source-image.jpg --target notebooks/example_photos --gif":
        "the pose environment (built on first use) and 15 s; tests/test_demo.py runs the demo (slow tier)",
    "docker run -p 8501:8501 -p 8500:8500 --mount type=bind,source=$PWD/exports,target=/models --mount "
    "type=bind,source=$PWD/docs/serving,target=/config -t tensorflow/serving "
    "--model_config_file=/config/models.config --enable_batching "
    "--batching_parameters_file=/config/batching_parameters.txt": "TF Serving is not installed here",
    "curl -s http://localhost:8501/v1/models/dgan": "needs a TF Serving server",
    "curl -s http://localhost:8501/v1/models/dgan/metadata": "needs a TF Serving server",
    "python scripts/convert_original.py --generator-weights market-full/epoch_089_generator.h5 --dataset market "
    "--variant full --run runs/paper-market-full": PAPER_FILES,
    "python scripts/test.py --run runs/paper-market-full": PAPER_FILES,
    "python scripts/export.py --run runs/paper-market-full": PAPER_FILES,
    "python scripts/transfer.py --run runs/paper-market-full --source me.jpg --source-pose me.json --target-pose "
    "a.json --output-dir out": PAPER_FILES,
    "python scripts/convert_original.py --generator-weights G.h5 --discriminator-weights D.h5 --dataset fashion "
    "--variant dsc --run runs/paper-fashion-dsc": PAPER_FILES,
    "python scripts/train.py --run runs/paper-fashion-dsc --iterations 100000": PAPER_FILES,
    "python scripts/make_synthetic.py --image-size 256x256": "2,000 images at 256x256; the same program runs on 40",
}
RUN = (
    "source .venv/bin/activate\npython scripts/transfer.py --help",
    "import dgan_tf",
    "python scripts/transfer.py --run runs/tiny --source notebooks/example_photos/source-image.jpg --source-pose "
    "notebooks/example_photos/annotation.csv:source-image.jpg --target-pose notebooks/example_photos/annotation.csv:"
    "frame_000.jpg notebooks/example_photos/annotation.csv:frame_001.jpg --output-dir outputs/transfer-csv",
    "python - <<'EOF'",
    "python scripts/make_synthetic.py --output-dir outputs/small-figures --identities 10 --images-per-identity 4",
    "python scripts/make_pairs.py outputs/small-figures/synthetic-annotation-train.csv --output "
    "outputs/small-figures/pairs.csv --dataset synthetic",
)


def readme_commands():
    """[(kind, key, text)]: each command of the README's bash blocks (a heredoc with its body; a block that
    activates .venv is one command, run as a shell script) and each python block; key = its first line."""
    commands = []
    readme = (REPO_ROOT / "README.md").read_text()
    for match in re.finditer(r"^( *)```(bash|python)\n(.*?)^\1```$", readme, re.S | re.M):  # in a list item too
        indent, kind, body = match.groups()
        body = textwrap.dedent(body) if indent else body
        if kind == "python" or body.startswith("source "):
            commands.append((kind if kind == "python" else "shell", _key(body), body))
            continue
        lines = iter(re.sub(r"\\\n\s*", "", body).splitlines())  # a line ending in a backslash goes on
        for line in lines:
            if not line.strip() or line.startswith("#"):
                continue
            if "<<'EOF'" in line:
                heredoc = [next(lines)]
                while heredoc[-1] != "EOF":
                    heredoc.append(next(lines))
                commands.append(("heredoc", _key(line), "\n".join(heredoc[:-1])))
            else:
                commands.append(("bash", _key(line), line))
    return commands


def _key(text):
    lines = text.splitlines() if text.startswith("source ") else text.splitlines()[:1]
    return "\n".join(re.sub(r"\s+#.*$", "", line).strip() for line in lines)


def test_every_readme_command_is_run_here_or_listed_with_a_reason():
    keys = [key for _, key, _ in readme_commands()]
    unknown = [key for key in keys if key not in NOT_RUN and key not in RUN]
    assert not unknown, "README commands neither run nor listed in NOT_RUN:\n" + "\n".join(unknown)
    assert not set(NOT_RUN) - set(keys) and not set(RUN) - set(keys), "listed but gone from the README"


@pytest.fixture
def fresh_clone(tmp_path, monkeypatch):
    """A folder laid out like a fresh clone with its .venv; the working directory of the commands."""
    clone = tmp_path / "clone"
    clone.mkdir()
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True).stdout.split()
    for name in sorted({path.split("/")[0] for path in tracked} | {".venv"}):
        if (REPO_ROOT / name).exists():
            (clone / name).symlink_to(REPO_ROOT / name)
    monkeypatch.chdir(clone)
    return clone


def run_in_process(kind, text, clone, monkeypatch):
    """Run one command here; returns what it printed. A program's exit status must be 0, code must not raise."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        if kind in ("python", "heredoc"):
            exec(compile(text, "README.md", "exec"), {"__name__": "__main__"})
        else:
            words = shlex.split(text, comments=True)
            assert words[0] == "python" and words[1].startswith("scripts/"), text
            monkeypatch.syspath_prepend(str(clone / "scripts"))
            monkeypatch.setattr(sys, "argv", words[1:])
            with pytest.raises(SystemExit) as stopped:
                runpy.run_path(words[1], run_name="__main__")
            assert stopped.value.code in (0, None), f"{text}\nexit status {stopped.value.code}"
    return printed.getvalue()


def test_the_cheap_readme_commands_run_as_written(fresh_clone, monkeypatch, capsys):
    make_tiny_run(fresh_clone / "runs" / "tiny", width=0.125)
    shutil.copytree(fresh_clone / "runs" / "tiny", fresh_clone / "runs" / "synthetic-dsc")
    commands = {key: (kind, text) for kind, key, text in readme_commands()}
    printed = {}
    for key in RUN:
        kind, text = commands[key]
        if kind == "shell":
            env = {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}
            env["PATH"] = os.pathsep.join(p for p in env["PATH"].split(os.pathsep) if ".venv" not in p)  # a shell
            check = "\npython -c 'import PIL, sys; print(\"python in\", sys.prefix)'"  # the packages' python
            done = subprocess.run(["bash", "-e", "-c", text + check], cwd=fresh_clone, capture_output=True,
                                  text=True, timeout=300, env=env)
            assert done.returncode == 0, done.stderr[-3000:]
            printed[key] = done.stdout
        else:
            printed[key] = run_in_process(kind, text, fresh_clone, monkeypatch)
    assert "--verbose" in printed[RUN[0]] and "Examples:" in printed[RUN[0]] and "python in" in printed[RUN[0]]
    assert "(128, 64, 3) uint8" in printed["import dgan_tf"]  # what the README says it prints
    assert "2 images of source-image.jpg (128x64; model 128x64, KerasGenerator from runs/tiny)" in printed[RUN[2]]
    assert sorted(p.name for p in (fresh_clone / "outputs" / "transfer-csv").iterdir()) == [
        "000_frame_000.png", "001_frame_001.png"]
    assert len(list((fresh_clone / "outputs" / "openpose-walk").glob("walk_*_keypoints.json"))) == 3
    assert "pairs" in printed[RUN[5]] and (fresh_clone / "outputs" / "small-figures" / "pairs.csv").is_file()
