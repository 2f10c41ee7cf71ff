"""The build room: a RunConfig -> its dataset, models, loss terms, optimisers and GAN, ready for the Trainer.

train.py, the benchmarks and the tests build here; `dgan_tf.training.trainer.Trainer` only trains what it is
given. Everything is seeded from config.seed and built under the config's precision policy.
"""

import contextlib
import dataclasses
from typing import Any

import keras
import numpy as np

SAMPLES_IN_GRID = 4


def default_xla():
    """XLA on GPU (the design's default); off on CPU, where it measured 1.5-3.5x slower than plain tf.function."""
    if keras.backend.backend() == "jax":
        return True  # a JAX step is always compiled by XLA
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def default_strategy():
    """MirroredStrategy over all GPUs when several are visible (TensorFlow backend), else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


@contextlib.contextmanager
def precision_policy(precision):
    """Keras's global dtype policy set to `precision` while models are built (they keep it), then restored."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


# ---- data


def ensure_dataset(config):
    """The run's DatasetConfig, its training split checked; the synthetic set is created on first use."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import create_on_first_use

    data = get_dataset(config.dataset, data_root=config.data_root, image_size=config.image_size)
    create_on_first_use(data)
    data.check_present("train")
    return data


@dataclasses.dataclass
class TrainingData:
    """The training input: batches of three minibatches (D real, D fake, G update) and the sample-grid pairs."""

    dataset: Any  # tf.data.Dataset of dicts of (3B, ...) tensors, repeated and reshuffled each pass
    batches: Any  # an iterator over it that names the image file when one cannot be decoded
    sample_batch: dict  # numpy arrays of up to SAMPLES_IN_GRID fixed pairs (test pairs when there are any)


def build_training_data(config, data):
    """TrainingData of `config` from the DatasetConfig `data` (seeded shuffling)."""
    from dgan_tf.data.pipeline import ClearErrorIterator, dataset_for_split
    from dgan_tf.training.gan import MINIBATCHES_PER_ITERATION

    per_iteration = config.batch_size * MINIBATCHES_PER_ITERATION
    dataset, _, _, paths = dataset_for_split(data, "train", per_iteration, shuffle=True, seed=config.seed)
    return TrainingData(dataset, ClearErrorIterator(dataset, paths, config.image_size), sample_pairs(data))


def sample_pairs(data):
    """The first SAMPLES_IN_GRID pairs of the test split when it is there, else of the training split."""
    from dgan_tf.data.datasets import DatasetNotFoundError
    from dgan_tf.data.pipeline import NoPairsError, dataset_for_split

    def first_batch(split):
        # drop_remainder=False: a split of fewer pairs than the grid still gives samples
        dataset, _, _, _ = dataset_for_split(data, split, SAMPLES_IN_GRID, shuffle=False, repeat=False,
                                             drop_remainder=False)
        return {k: np.asarray(v) for k, v in next(iter(dataset)).items()}

    try:
        data.check_present("test")
        return first_batch("test")
    except (DatasetNotFoundError, NoPairsError):
        return first_batch("train")


# ---- models, losses, optimisers


def generator_of(config):
    """The run's generator (untrained) under the current dtype policy."""
    from dgan_tf.models.generator import build_generator

    return build_generator(config.image_size, architecture=config.architecture, norm=config.norm,
                           warp_sampling=config.warp_sampling, width=config.width, heatmaps=config.heatmaps,
                           warp_gradient=config.warp_gradient, part_max=config.part_max)


def discriminator_of(config):
    """The run's discriminator (untrained) under the current dtype policy."""
    from dgan_tf.models.discriminator import build_discriminator

    return build_discriminator(config.image_size, norm=config.norm, width=config.width, heatmaps=config.heatmaps)


def build_models(config):
    """RunConfig -> (generator, discriminator) under the current dtype policy."""
    return generator_of(config), discriminator_of(config)


def adam_optimizer(config):
    """Adam of the run: lr 2e-4, beta_1 0.5, beta_2 0.999 (pose-gan conditional_gan.py:259-260 at 8693ec4) and
    epsilon 1e-8 (Keras 2.0.8's default; Keras 3's is 1e-7), all from the config."""
    optimizer = keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                      epsilon=config.adam_epsilon)
    if config.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def build_gan(config, vgg_weights=None, loss_scale=1.0, terms=None):
    """The compiled DeformableGAN of `config` (models under its precision policy, optimisers built).

    vgg_weights: a file path, None (the Keras cache, else a checked download) or "random" (tests only).
    terms: {name: LossTerm} instead of the config's (dgan_tf.loss_terms.build_generator_terms).
    """
    from dgan_tf.loss_terms import build_generator_terms
    from dgan_tf.training.gan import DeformableGAN

    if config.precision == "mixed_float16" and keras.backend.backend() != "tensorflow":
        raise ValueError("precision=mixed_float16 needs loss scaling, supported on the TensorFlow backend only; "
                         "use mixed_bfloat16 on JAX")
    with precision_policy(config.precision):
        generator, discriminator = build_models(config)
        if terms is None:
            terms = build_generator_terms(config, vgg_weights)
        gan = DeformableGAN(generator, discriminator, terms, loss_scale=loss_scale)
        gan.compile(generator_optimizer=adam_optimizer(config), discriminator_optimizer=adam_optimizer(config))
    return gan


# ---- everything


def build_trainer(config, run, *, vgg_weights=None, xla=None, strategy="auto", run_eagerly=False, progress=True,
                  log_every=10, terms=None):
    """A Trainer for `config` writing into `run` (a dgan_tf.run.Run), resumed from the run's newest checkpoint.

    strategy: "auto" (MirroredStrategy with several GPUs), None, or a tf.distribute strategy.
    run_eagerly: TensorFlow only, the step without tf.function (debugging, fast loop tests).
    """
    from dgan_tf.training.trainer import Trainer

    keras.utils.set_random_seed(config.seed)
    data = build_training_data(config, ensure_dataset(config))
    strategy = default_strategy() if strategy == "auto" else strategy
    if strategy is not None:
        with strategy.scope():
            gan = build_gan(config, vgg_weights, loss_scale=1.0 / strategy.num_replicas_in_sync, terms=terms)
    else:
        gan = build_gan(config, vgg_weights, terms=terms)
    trainer = Trainer(config, run, gan, data, strategy=strategy, xla=default_xla() if xla is None else bool(xla),
                      run_eagerly=run_eagerly, progress=progress, log_every=log_every)
    return trainer.resume()
