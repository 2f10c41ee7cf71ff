"""Training loop: every variant trains on tiny synthetic data, resume, NaN stop, on both backends.

The models are the paper's architectures at a reduced channel width (`width`), so that the whole
matrix runs in CI on a 2-core CPU; width 1 is covered by the exact parameter-count tests. The loop
tests (resume, NaN stop) run the same train_step eagerly: tracing the step costs about 20 s.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow





def tiny_config(data_root, variant="dsc", **overrides):
    from dgan_tf.config import build_run_config

    values = dict(iterations=2, batch_size=1, checkpoint_every=1, sample_every=1, width=0.125,
                  data_root=data_root, seed=0)
    values.update(overrides)
    return build_run_config("synthetic", variant, **values)


def weights_of(model):
    return [np.array(w) for w in model.get_weights()]


def run_tiny(config, output_dir, **kwargs):
    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run

    trainer = build_trainer(config, Run(output_dir), xla=False, progress=False, **kwargs)
    before_g, before_d = weights_of(trainer.gan.generator), weights_of(trainer.gan.discriminator)
    losses = trainer.train()
    return trainer, losses, before_g, before_d


def changed(before, after):
    return any(not np.array_equal(a, b) for a, b in zip(before, after))


# The variants through the same train_step, eagerly. dsc, the default, trains through train.py's tf.function step
# in tests/test_scripts_end_to_end.py (finite losses, G's and D's weights changed), which costs less than its eager
# step here (20-40 s on 2 cores); percloss and full have its deformable skips too. The JAX test compiles full.
@pytest.mark.parametrize("variant", ["baseline", "percloss", "full"])
def test_every_variant_trains(variant, tiny_data_root, tmp_path):
    config = tiny_config(tiny_data_root, variant, iterations=3, checkpoint_every=2, sample_every=2)
    # percloss/full run their VGG19 layers with explicitly random weights (no download in tests).
    trainer, losses, before_g, before_d = run_tiny(config, tmp_path, vgg_weights="random", run_eagerly=True)
    assert trainer.step == 3
    assert set(losses) == {"d_loss", "g_adversarial", "g_reconstruction", "g_loss"}
    assert all(np.isfinite(v) for v in losses.values()), losses
    assert changed(before_g, weights_of(trainer.gan.generator))
    assert changed(before_d, weights_of(trainer.gan.discriminator))
    assert json.loads((tmp_path / "config.json").read_text())["variant"] == variant
    if variant == "dsc":
        check_outputs(trainer, tmp_path)


def check_outputs(trainer, run_dir):
    """Checkpoints every N and at the end, sample grids, TensorBoard events, a reloadable generator."""
    import imageio.v3 as iio
    import keras

    from dgan_tf.run import Run

    assert [p.name for _, p in Run(run_dir).checkpoint_files()] == ["ckpt-00000002.npz", "ckpt-00000003.npz"]
    grid = iio.imread(run_dir / "samples" / "step-00000002.png")
    height, width = trainer.config.image_size
    assert grid.shape == (4 * height, 4 * width, 3)  # 4 samples x (source | pose | generated | target)
    assert (run_dir / "samples" / "latest.png").exists()
    assert any(name.startswith("events") for name in os.listdir(run_dir / "logs"))
    reloaded = keras.saving.load_model(run_dir / "generator.keras")
    batch = trainer.sample_batch
    inputs = [batch["source_image"], batch["source_keypoints"], batch["target_keypoints"]]
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0),
                               trainer.gan.generator.predict(inputs, verbose=0), atol=1e-5)


def test_resume_after_interruption_continues_from_saved_iteration(tiny_data_root, tmp_path):
    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run

    config = tiny_config(tiny_data_root, iterations=4, checkpoint_every=2)
    saved = {}

    def interrupt(trainer):
        if trainer.step == 2:
            saved["g"] = weights_of(trainer.gan.generator)
            saved["d"] = weights_of(trainer.gan.discriminator)
            saved["opt"] = [np.array(v) for v in trainer.gan.generator_optimizer.variables]
        if trainer.step == 3:
            raise KeyboardInterrupt  # killed between two checkpoints

    first = build_trainer(config, Run(tmp_path), progress=False, run_eagerly=True)
    with pytest.raises(KeyboardInterrupt):
        first.train(on_step=interrupt)
    # a half-written checkpoint left by a kill must be ignored
    (tmp_path / "checkpoints" / ".ckpt-00000004.npz.partial.tmp").write_bytes(b"\x00" * 10)

    resumed = build_trainer(config, Run(tmp_path), progress=False, run_eagerly=True)
    assert resumed.step == 2
    for a, b in zip(saved["g"], weights_of(resumed.gan.generator)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(saved["d"], weights_of(resumed.gan.discriminator)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(saved["opt"], resumed.gan.generator_optimizer.variables):
        np.testing.assert_array_equal(a, np.array(b))
    resumed.train()
    assert resumed.step == 4


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_data_root, tmp_path):
    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run
    from dgan_tf.training.trainer import TrainingDiverged

    config = tiny_config(tiny_data_root, iterations=4, checkpoint_every=1)
    trainer = build_trainer(config, Run(tmp_path), progress=False, run_eagerly=True)
    real_step = trainer.step_fn

    def poisoned(batch):
        losses = real_step(batch)
        if trainer.step == 2:  # the third iteration diverges
            losses = dict(losses, g_loss=float("nan"))
        return losses

    trainer.step_fn = poisoned
    with pytest.raises(TrainingDiverged, match="g_loss became nan at iteration 3"):
        trainer.train()
    assert Run(tmp_path).latest_checkpoint().name == "ckpt-00000002.npz"
    assert not (tmp_path / "generator.keras").exists()


def test_resume_refuses_a_conflicting_configuration(tiny_data_root, tmp_path):
    from dgan_tf.config import resume_config
    from dgan_tf.run import Run

    Run(tmp_path).save_config(tiny_config(tiny_data_root, "dsc"))
    with pytest.raises(ValueError, match="variant: saved 'dsc', requested 'baseline'"):
        resume_config(Run(tmp_path).load_config(), {"variant": "baseline", "iterations": 9})
    merged = resume_config(Run(tmp_path).load_config(), {"iterations": 9, "variant": "dsc"})
    assert merged.iterations == 9 and merged.variant == "dsc"
    assert resume_config(Run(tmp_path).load_config(), {}) == Run(tmp_path).load_config()  # no flag: the saved run as it is


JAX_SCRIPT = r"""
import json, sys
import numpy as np
from dgan_tf.config import build_run_config
from dgan_tf.build import build_trainer
from dgan_tf.run import Run
results = {}
# full: two streams, deformable skips, VGG19 features and the NN loss, the most the JAX step does; the TF test
# above trains all four variants (baseline's plain encoder is the same Keras layers on either backend).
for variant in ("full",):
    config = build_run_config("synthetic", variant, iterations=1, batch_size=1, checkpoint_every=1, sample_every=2,
                              width=0.125, data_root=sys.argv[1], seed=0)
    trainer = build_trainer(config, Run(sys.argv[2] + "/" + variant), progress=False, vgg_weights="random")
    before = [np.array(w) for w in trainer.gan.generator.get_weights()]
    losses = trainer.train()
    after = [np.array(w) for w in trainer.gan.generator.get_weights()]
    results[variant] = dict(losses=losses, step=trainer.step,
                            changed=any(not np.array_equal(a, b) for a, b in zip(before, after)))
print("RESULT" + json.dumps(results))
"""


def test_jax_backend_trains_the_full_variant(tiny_data_root, tmp_path):
    pytest.importorskip("jax")
    # XLA's CPU backend unoptimised (speed is not tested): the test takes 24 s instead of 37 s
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT),
               XLA_FLAGS="--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true")
    done = subprocess.run([sys.executable, "-c", JAX_SCRIPT, tiny_data_root, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(done.stdout.split("RESULT", 1)[1])
    for variant, result in results.items():
        assert result["step"] == 1, variant
        assert all(np.isfinite(v) for v in result["losses"].values()), (variant, result)
        assert result["changed"], variant


MIRRORED_SCRIPT = r"""
import json, sys
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from dgan_tf.config import build_run_config
from dgan_tf.build import build_trainer
from dgan_tf.run import Run
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
import shutil
data_root = shutil.copytree(sys.argv[1], sys.argv[2] + "/data")  # its images are damaged below
config = build_run_config("synthetic", "baseline", iterations=1, batch_size=2, checkpoint_every=1, sample_every=2,
                          width=0.125, data_root=data_root, seed=0)
trainer = build_trainer(config, Run(sys.argv[2]), xla=False, progress=False, strategy=strategy)
before = [np.array(w) for w in trainer.gan.generator.get_weights()]
losses = trainer.train()
after = [np.array(w) for w in trainer.gan.generator.get_weights()]
def replicas(variable):
    for candidate in (variable, getattr(variable, "value", None), getattr(variable, "_value", None)):
        if hasattr(candidate, "values"):
            return candidate.values
    raise AssertionError(f"{variable.path} is not a mirrored variable")
in_sync = all(np.array_equal(np.asarray(a), np.asarray(b))
              for a, b in (replicas(v) for v in trainer.gan.generator.trainable_variables))
from pathlib import Path
from dgan_tf.data.pipeline import ImageError
for image in Path(data_root).rglob("*.jpg"):
    image.write_bytes(b"not an image")
bad_image = None
for _ in range(50):  # the batches already decoded ahead come first
    try:
        trainer._next_batch()
    except ImageError as error:
        bad_image = str(error)
        break
print("RESULT" + json.dumps(dict(losses=losses, step=trainer.step, replicas=strategy.num_replicas_in_sync,
      changed=any(not np.array_equal(a, b) for a, b in zip(before, after)), in_sync=in_sync, bad_image=bad_image)))
"""


def test_mirrored_strategy_trains_on_two_replicas(tiny_data_root, tmp_path):
    """tf.distribute.MirroredStrategy (used automatically with several GPUs), here over two logical CPUs, the traced
    step of the baseline: what the strategy adds (mirrored variables, all-reduce, loss scaling) is the same for every
    variant, and tracing the dsc variant's deformable skips per replica took 90 s in the suite against 18 s."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", MIRRORED_SCRIPT, tiny_data_root, str(tmp_path)], env=env,
                          capture_output=True, text=True, timeout=900, cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT", 1)[1])
    assert result["replicas"] == 2 and result["step"] == 1 and result["changed"] and result["in_sync"]
    assert ".jpg" in result["bad_image"] and "Training stopped at iteration 1" in result["bad_image"], result
    assert all(np.isfinite(v) for v in result["losses"].values()), result


@pytest.mark.parametrize("precision,compute_dtype", [("mixed_bfloat16", "bfloat16"), ("mixed_float16", "float16")])
def test_mixed_precision_trains_and_leaves_the_global_policy_alone(precision, compute_dtype, tiny_data_root,
                                                                   tmp_path):
    import keras

    from dgan_tf.build import build_trainer
    from dgan_tf.run import Run

    config = tiny_config(tiny_data_root, iterations=1, precision=precision)
    trainer = build_trainer(config, Run(tmp_path), progress=False, run_eagerly=True)
    assert keras.mixed_precision.global_policy().name == "float32"
    assert trainer.gan.generator.get_layer("appearance_conv0").compute_dtype == compute_dtype
    losses = trainer.train()
    assert all(np.isfinite(v) for v in losses.values()), losses
