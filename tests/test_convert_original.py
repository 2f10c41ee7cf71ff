"""scripts/convert_original.py: the authors' released weights become a run folder; bad files and folders are refused
before anything is written. The images it makes equal the original's: tests/test_original_parity.py."""

import numpy as np
import pytest

from dgan_tf.cli.convert_original import main
from dgan_tf.run import Run
from original_pose_gan.keras2_files import full_size_file

MARKET = (128, 64)


@pytest.fixture(scope="module")
def original_files(tmp_path_factory):
    """The original's Market generator (two-stream) and discriminator files, shapes only (a few KB each)."""
    root = tmp_path_factory.mktemp("original")
    return (full_size_file(root / "generator.h5", "generator", MARKET, "two_stream"),
            full_size_file(root / "discriminator.h5", "discriminator", MARKET))


def convert(generator, run, *extra):
    return main(["--generator-weights", str(generator), "--dataset", "market", "--run", str(run), *map(str, extra)])


def test_a_file_of_another_variant_or_size_is_refused_and_nothing_written(original_files, tmp_path, capsys):
    generator, discriminator = original_files
    run = tmp_path / "run"
    assert convert(generator, run, "--variant", "baseline") == 2
    err = capsys.readouterr().err
    assert "which is the original's two_stream generator (variants dsc, percloss, full) at market 128x64" in err
    assert "the baseline generator at (128, 64) has 36,072,533" in err and "Traceback" not in err
    assert main(["--generator-weights", str(generator), "--dataset", "fashion", "--variant", "dsc",
                 "--run", str(run)]) == 2
    assert "the two_stream generator at (256, 256) has 82,080,611" in capsys.readouterr().err
    assert convert(discriminator, run, "--variant", "dsc") == 2  # a discriminator given as the generator
    assert "discriminator at market 128x64" in capsys.readouterr().err
    assert convert(generator, run, "--variant", "dsc", "--discriminator-weights", generator) == 2
    assert "the discriminator at (128, 64) has 2,803,782" in capsys.readouterr().err
    assert convert(tmp_path / "missing.h5", run, "--variant", "dsc") == 2
    assert "missing.h5" in capsys.readouterr().err
    assert not run.exists()


def test_an_existing_run_is_never_overwritten(original_files, tmp_path, capsys):
    run = Run(tmp_path / "trained")
    run.folder.mkdir()
    (run.folder / "generator.keras").write_bytes(b"a trained model")
    assert convert(original_files[0], run.folder, "--variant", "dsc") == 2
    assert "is not empty (generator.keras)" in capsys.readouterr().err
    assert (run.folder / "generator.keras").read_bytes() == b"a trained model"


@pytest.mark.slow  # the paper's networks at full size: a 965 MB run folder
def test_generator_and_discriminator_make_a_run_that_train_resumes(original_files, tmp_path, capsys):
    from dgan_tf.build import build_gan
    from dgan_tf.loss_terms import build_generator_terms

    generator, discriminator = original_files
    run = Run(tmp_path / "paper")
    assert convert(generator, run.folder, "--variant", "full", "--discriminator-weights", discriminator,
                   "--output-dir", run.folder) == 0  # --output-dir: the spelling, a quiet alias
    out = capsys.readouterr().out
    assert "61,109,085 parameters" in out and "checkpoints/ckpt-00089000.npz (iteration 89,000)" in out
    config = run.load_config()
    assert (config.dataset, config.variant, config.image_size, config.width) == ("market", "full", MARKET, 1.0)
    assert (config.heatmaps, config.warp_gradient, config.norm, config.warp_sampling) == (
        "staircase", "original", "scalar", "nearest")  # the original's settings
    assert config.iterations >= 89_000
    generator_model = run.load_model()
    assert generator_model.count_params() == 61_109_085
    gan = build_gan(config, terms=build_generator_terms(config.replace(loss_weights={"g_adversarial": 1.0})))
    step, path = run.restore_latest(gan)  # what train.py --run RUN does first
    assert (step, path.name) == (89_000, "ckpt-00089000.npz")
    # The files hold no data (HDF5 fill value 0): every converted weight reads back as 0.
    assert all(not np.any(w) for w in gan.discriminator.get_weights())
    assert all(not np.any(w) for w in generator_model.get_weights())
