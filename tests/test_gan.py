"""The GAN's named losses: a new term shows up in the step, TensorBoard and the progress bar; trackers average.

Eager steps at a tiny width (fast tier); the compiled steps are covered by the slow tier (test_training).
"""

import glob
import json
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


def feature_matching_spec():
    """A registry entry, as a user adds one: SPADE's feature matching on D's activations."""
    from dgan_tf.loss_terms import TermSpec, feature_matching_loss

    return TermSpec(lambda config, vgg_weights: lambda c: feature_matching_loss(c.real_features, c.fake_features),
                    needs_discriminator_features=True)


def test_a_new_loss_term_is_one_registry_entry_and_its_weight(tiny_data_root, tmp_path, capsys, monkeypatch):
    from dgan_tf import loss_terms
    from dgan_tf.build import build_trainer
    from dgan_tf.config import build_run_config
    from dgan_tf.run import Run

    monkeypatch.setitem(loss_terms.GENERATOR_TERMS, "g_feature_matching", feature_matching_spec())  # place 1
    config = build_run_config("synthetic", "dsc", iterations=2, batch_size=1, checkpoint_every=5, sample_every=5,
                              width=0.125, data_root=tiny_data_root, seed=0,
                              loss_weights={"g_feature_matching": 10.0})  # place 2
    trainer = build_trainer(config, Run(tmp_path), progress=True, run_eagerly=True, log_every=2)
    before = [np.array(w) for w in trainer.gan.generator.get_weights()]
    seen = []
    losses = trainer.train(on_step=lambda t: seen.append(dict(t.last_losses)))
    assert list(losses) == ["d_loss", "g_adversarial", "g_reconstruction", "g_feature_matching", "g_loss"]
    for values in seen:  # the total is the weighted sum of the named terms, the new one included
        assert values["g_feature_matching"] > 0
        assert values["g_loss"] == pytest.approx(values["g_adversarial"] + 100 * values["g_reconstruction"]
                                                 + 10 * values["g_feature_matching"], rel=1e-5)
    assert any(not np.array_equal(a, b) for a, b in zip(before, trainer.gan.generator.get_weights()))
    assert "g_feature_matching" in capsys.readouterr().err  # the progress bar's postfix
    assert json.loads((tmp_path / "config.json").read_text())["loss_weights"]["g_feature_matching"] == 10.0
    logged = tensorboard_scalars(tmp_path / "logs")
    assert set(losses) <= set(logged)
    # log_every=2: what TensorBoard holds at step 2 is the Mean tracker over steps 1 and 2.
    for name in losses:
        (step, value), = logged[name]
        assert step == 2
        assert value == pytest.approx((seen[0][name] + seen[1][name]) / 2, rel=1e-5)


def test_the_loss_context_carries_the_batch_and_d_features_only_when_a_term_reads_them(tmp_path, monkeypatch):
    from dgan_tf import loss_terms
    from dgan_tf.build import build_gan
    from dgan_tf.config import build_run_config
    from dgan_tf.models.discriminator import FEATURE_LAYERS
    from dgan_tf.training.gan import loss_context

    monkeypatch.setitem(loss_terms.GENERATOR_TERMS, "g_feature_matching", feature_matching_spec())
    plain = build_gan(build_run_config("synthetic", "dsc", width=0.0625, data_root=str(tmp_path)))
    assert plain.discriminator_features is None and not plain.needs_discriminator_features
    config = build_run_config("synthetic", "dsc", width=0.0625, data_root=str(tmp_path),
                              loss_weights={"g_feature_matching": 1.0})
    gan = build_gan(config)
    assert gan.needs_discriminator_features
    shared = gan.discriminator_features.trainable_variables
    assert [id(v) for v in shared] == [id(v) for v in gan.discriminator.trainable_variables]
    rng = np.random.default_rng(0)
    pairs = {"source_image": rng.uniform(-1, 1, (2, 128, 64, 3)).astype("float32"),
             "target_image": rng.uniform(-1, 1, (2, 128, 64, 3)).astype("float32"),
             "source_keypoints": np.full((2, 18, 2), -1, "float32"), "target_keypoints": np.full((2, 18, 2), -1, "float32")}
    pairs = {name: keras.ops.convert_to_tensor(value) for name, value in pairs.items()}
    generated = gan.generator([pairs["source_image"], pairs["source_keypoints"], pairs["target_keypoints"]])
    context = loss_context(pairs, generated, gan._discriminate, True)
    assert len(context.fake_features) == len(context.real_features) == len(FEATURE_LAYERS)
    np.testing.assert_array_equal(context.target_image, pairs["target_image"])
    np.testing.assert_array_equal(context.source_keypoints, pairs["source_keypoints"])
    assert tuple(context.fake_prob.shape) == (2, 3, 1, 1)
    without = loss_context(pairs, generated, gan._discriminate, False)
    assert without.fake_features == () and without.real_features == ()
    np.testing.assert_allclose(without.fake_prob, context.fake_prob, rtol=1e-6)


def test_loss_weights_choose_the_terms(tmp_path):
    from dgan_tf.config import RunConfig, build_run_config
    from dgan_tf.loss_terms import build_generator_terms

    config = build_run_config("synthetic", "dsc", data_root=str(tmp_path))
    assert config.loss_weights == {"g_adversarial": 1.0, "g_reconstruction": 100.0}
    assert build_run_config("synthetic", "full", data_root=str(tmp_path)).reconstruction_weight == 0.01
    assert list(build_generator_terms(config)) == ["g_adversarial", "g_reconstruction"]
    off = config.replace(loss_weights={"g_adversarial": 1.0, "g_reconstruction": 0.0})
    assert list(build_generator_terms(off)) == ["g_adversarial"]  # weight 0: not built, not computed
    with pytest.raises(ValueError, match=r"Unknown loss term 'g_typo'.*g_adversarial"):
        build_generator_terms(config.replace(loss_weights={"g_typo": 1.0}))
    with pytest.raises(ValueError, match=r"loss_weights\['g_reconstruction'\] must be a finite number"):
        build_run_config("synthetic", "dsc", data_root=str(tmp_path), loss_weights={"g_reconstruction": -1.0})
    # a config.json of dgan_tf 0.2 (one reconstruction_weight field) keeps what that run trained with
    old = json.loads(config.to_json())
    del old["loss_weights"]
    old["reconstruction_weight"] = 0.5
    assert RunConfig.from_json(json.dumps(old)).loss_weights == {"g_adversarial": 1.0, "g_reconstruction": 0.5}


def test_loss_weight_flag_sets_and_resumes_a_weight(tmp_path):
    from dgan_tf.cli.train import parse_args, run_config
    from dgan_tf.run import Run

    run = Run(tmp_path / "run")
    config = run_config(parse_args(["--data-root", str(tmp_path), "--loss-weight", "g_reconstruction=50"]), run)
    assert config.loss_weights == {"g_adversarial": 1.0, "g_reconstruction": 50.0}
    run.save_config(config)
    assert run_config(parse_args(["--loss-weight", "g_reconstruction=50"]), run) == config
    with pytest.raises(ValueError, match="loss_weights: saved"):
        run_config(parse_args(["--loss-weight", "g_reconstruction=40"]), run)
    with pytest.raises(SystemExit):
        parse_args(["--loss-weight", "g_reconstruction"])


def test_the_gan_is_a_plain_class_and_refuses_reserved_term_names():
    from dgan_tf.loss_terms import LossTerm
    from dgan_tf.training.gan import DeformableGAN

    assert not isinstance(DeformableGAN, type(keras.Model)) or not issubclass(DeformableGAN, keras.Model)
    with pytest.raises(ValueError, match="g_loss"):
        DeformableGAN(None, None, {"g_loss": LossTerm(1.0, lambda context: 0.0)})
    with pytest.raises(ValueError, match="at least one"):
        DeformableGAN(None, None, {})


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
