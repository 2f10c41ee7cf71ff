"""A newcomer's first use: test.py on a run copied without its data creates the synthetic data, as train.py does,
and says in one line each which optional weights it lacks; metrics.md names the IS/FID network and the DS
detector, or says there was none."""

import functools
import shutil

from dgan_tf.data import synthetic
from tests.serving_helpers import make_tiny_run


def test_test_py_on_a_copied_run_creates_the_data_and_names_what_it_skipped(tmp_path, monkeypatch, capsys):
    from dgan_tf.cli.test import main
    from dgan_tf.data.datasets import get_dataset

    make_tiny_run(tmp_path / "trained")
    shutil.copytree(tmp_path / "trained", tmp_path / "copy")  # config.json says data root trained/no-data: absent
    monkeypatch.setattr(synthetic, "ensure_synthetic_dataset", functools.partial(
        synthetic.ensure_synthetic_dataset, identities=4, images_per_identity=2, test_fraction=0.5))
    monkeypatch.setenv("DGAN_OFFLINE", "1")
    assert main(["--run", str(tmp_path / "copy"), "--no-progress"]) == 0
    out, err = capsys.readouterr()
    data = get_dataset("synthetic", data_root=str(tmp_path / "trained" / "no-data"))
    assert f"Creating the synthetic dataset in {data.data_dir} (first use)" in out and synthetic.is_complete(
        data.data_dir)
    notes = [line for line in err.splitlines() if line.startswith("note: ")]
    assert len(notes) == 2 and all(len(line) < 250 for line in notes), err
    assert "--inception-graph PATH" in notes[0] and "--no-inception" in notes[0]
    assert "--ssd-weights PATH" in notes[1] and "--no-ds" in notes[1]
    assert "https://" not in err and "warning:" not in err
    report = (tmp_path / "copy" / "test" / "metrics.md").read_text()
    assert "named below" not in report
    assert "IS/FID network: none (the 2015 Inception network's weights were not found)." in report
    assert "DS detector: none (SSD300 weights not found)." in report
