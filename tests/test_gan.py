"""The GAN's named losses: a new term shows up in the step, TensorBoard and the progress bar; trackers average.

Eager steps at a tiny width (fast tier); the compiled steps are covered by the slow tier (test_training).
"""

import glob
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import REPO_ROOT




def tensorboard_scalars(logdir):
    """{tag: [(step, value)]} read back from the event files."""
    import tensorflow as tf

    scalars = {}
    for path in glob.glob(f"{logdir}/events*"):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                array = tf.make_ndarray(value.tensor)
                if array.ndim == 0:  # scalars only (the sample grids are images)
                    scalars.setdefault(value.tag, []).append((event.step, float(array)))
    return scalars


def test_a_new_loss_term_is_logged_everywhere_and_trackers_average(tiny_data_root, tmp_path, capsys):
    from dgan_tf.config import build_run_config
    from dgan_tf.training.gan import LossTerm
    from dgan_tf.training.trainer import Trainer

    config = build_run_config("synthetic", "dsc", iterations=2, batch_size=1, checkpoint_every=5, sample_every=5,
                              width=0.125, data_root=tiny_data_root, seed=0)
    trainer = Trainer(config, tmp_path, progress=True, run_eagerly=True, log_every=2).setup()
    # One entry added to the named terms (weight 0: it changes nothing but the logs).
    trainer.gan.generator_terms["g_brightness"] = LossTerm(0.0, lambda target, generated, fake_prob: keras.ops.mean(generated))
    seen = []
    losses = trainer.run(on_step=lambda t: seen.append(dict(t.last_losses)))
    assert list(losses) == ["d_loss", "g_adversarial", "g_reconstruction", "g_brightness", "g_loss"]
    assert "g_brightness" in capsys.readouterr().err  # the progress bar's postfix
    logged = tensorboard_scalars(tmp_path / "logs")
    assert set(losses) <= set(logged)
    # log_every=2: what TensorBoard holds at step 2 is the Mean tracker over steps 1 and 2.
    for name in losses:
        (step, value), = logged[name]
        assert step == 2
        assert value == pytest.approx((seen[0][name] + seen[1][name]) / 2, rel=1e-5)


def test_the_gan_is_a_plain_class_and_refuses_reserved_term_names():
    from dgan_tf.training.gan import DeformableGAN, LossTerm

    assert not isinstance(DeformableGAN, type(keras.Model)) or not issubclass(DeformableGAN, keras.Model)
    with pytest.raises(ValueError, match="g_loss"):
        DeformableGAN(None, None, generator_terms={"g_loss": LossTerm(1.0, lambda *a: 0.0)})
    with pytest.raises(ValueError, match="reconstruction_loss"):
        DeformableGAN(None, None)


def test_import_dgan_tf_is_enough_to_load_a_saved_generator(tmp_path):
    from dgan_tf.models.generator import build_generator

    path = tmp_path / "generator.keras"
    build_generator((128, 64), width=0.0625).save(path)
    code = ("import dgan_tf, keras, sys; m = keras.saving.load_model(sys.argv[1]); "
            "print('LOADED', type(m.get_layer('deformable_skip0')).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "LOADED DeformableSkip" in done.stdout
