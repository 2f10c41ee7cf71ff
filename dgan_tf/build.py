"""The build room: a RunConfig -> its dataset, models, loss terms, optimisers and GAN, ready for the Trainer.

train.py, the benchmarks and the tests build here; `dgan_tf.training.trainer.Trainer` only trains what it is
given. Everything is seeded from config.seed and built under the config's precision policy.
"""

import contextlib
import dataclasses
import functools
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
    paths: list  # the images its pairs name
    image_size: Any
    sample_batch: dict  # numpy arrays of up to SAMPLES_IN_GRID fixed pairs (test pairs when there are any)

    @functools.cached_property
    def batches(self):
        """An iterator over `dataset` that names the image file when one cannot be decoded. Made on first use: each
        iterator of the dataset reshuffles, and a tf.distribute strategy makes its own instead."""
        from dgan_tf.data.pipeline import ClearErrorIterator

        return ClearErrorIterator(self.dataset, self.paths, self.image_size)


def build_training_data(config, data, shard=(0, 1), replicas=1):
    """TrainingData of `config` from the DatasetConfig `data` (seeded shuffling).

    shard=(worker index, number of workers): this worker's share of the pairs; replicas: the devices this
    process trains on, each given its own config.batch_size pairs per minibatch.
    """
    from dgan_tf.data.pipeline import dataset_for_split
    from dgan_tf.training.gan import MINIBATCHES_PER_ITERATION

    per_iteration = config.batch_size * MINIBATCHES_PER_ITERATION * replicas
    dataset, _, _, paths = dataset_for_split(data, "train", per_iteration, shuffle=True, seed=config.seed,
                                             shard=shard)
    return TrainingData(dataset, paths, config.image_size, sample_pairs(data))


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
                  log_every=10, terms=None, cluster=None):
    """A Trainer for `config` writing into `run` (a dgan_tf.run.Run), resumed from the run's newest checkpoint.

    strategy: "auto" (MirroredStrategy with several GPUs), None, or a tf.distribute strategy.
    run_eagerly: TensorFlow only, the step without tf.function (debugging, fast loop tests).
    cluster: the job's workers (dgan_tf.training.cluster.join_cluster); its MultiWorkerMirroredStrategy, if any, is
    the strategy. config.batch_size is per replica (device): the global batch is that times the replicas.
    """
    from dgan_tf.training.cluster import Cluster
    from dgan_tf.training.trainer import Trainer

    cluster = cluster or Cluster()
    strategy = cluster.strategy or (default_strategy() if strategy == "auto" else strategy)
    keras.utils.set_random_seed(config.seed)
    # A tf.distribute strategy deals one element to each replica; JAX takes this process's devices' pairs at once.
    replicas = local_devices() if keras.backend.backend() == "jax" else 1
    data = build_training_data(config, dataset_of_job(config, cluster), shard=(cluster.index, cluster.num_workers),
                               replicas=replicas)
    if strategy is not None:
        with strategy.scope():
            gan = build_gan(config, vgg_weights, loss_scale=1.0 / strategy.num_replicas_in_sync, terms=terms)
    else:
        gan = build_gan(config, vgg_weights, terms=terms)  # JAX's sharded step takes the global mean itself
    trainer = Trainer(config, run, gan, data, strategy=strategy, xla=default_xla() if xla is None else bool(xla),
                      run_eagerly=run_eagerly, progress=progress, log_every=log_every, cluster=cluster)
    return trainer.resume()


def dataset_of_job(config, cluster):
    """ensure_dataset, the chief first: the synthetic set is created on first use by the chief alone, and the other
    workers, waiting for it, then find it ready (on a shared --data-root, two creators would replace each other's)."""
    if not cluster.distributed:
        return ensure_dataset(config)
    from dgan_tf.training.trainer import WorkerLost

    data = ensure_dataset(config) if cluster.is_chief else None
    try:
        cluster.sum_over_workers([0])  # the other workers wait here until the chief has its data
    except Exception as error:
        if not cluster.is_peer_failure(error):
            raise
        raise WorkerLost(cluster, 0, None, error, starting=True) from None
    return ensure_dataset(config) if data is None else data


def local_devices():
    """The JAX devices of this process; the step is sharded over every device of the job when there are several."""
    import jax

    return jax.local_device_count()
