"""The training loop: data, models, backend-specific step, checkpoints, samples, TensorBoard, NaN stop.

The step is `DeformableGAN.train_step` in a `tf.function` (XLA on GPU by default) on TensorFlow and
`make_jax_train_step` on JAX. Several GPUs train with `tf.distribute.MirroredStrategy` automatically.

Interruptions lose at most the iterations since the last checkpoint, and nothing where the process can act:
SIGTERM and Ctrl-C (what clusters send on preemption) finish the current iteration, save a checkpoint and raise
TrainingInterrupted; an image that becomes unreadable saves a checkpoint of the last completed iteration, then
raises an ImageError naming the file.
"""

import math
import signal
import sys
import threading
import time
from pathlib import Path

import keras
import numpy as np

from dgan_tf.training import checkpoints
from dgan_tf.config import save_config
from dgan_tf.training.gan import MINIBATCHES_PER_ITERATION, DeformableGAN, generator_inputs

SAMPLES_IN_GRID = 4


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


class TrainingInterrupted(Exception):
    """SIGTERM or SIGINT stopped training after a checkpoint of the current iteration was saved."""

    def __init__(self, signum, step, checkpoint):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"{self.signal_name} received: stopped after iteration {step}; checkpoint {checkpoint} "
                         "saved. Run the same command again to resume.")

    @property
    def exit_code(self):
        """128 + the signal number, as a shell reports a process stopped by that signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + self.signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def default_xla():
    """XLA on GPU (the design's default); off on CPU, where it measured 1.5-3.5x slower (PERFORMANCE.md)."""
    if keras.backend.backend() == "jax":
        return True  # a JAX step is always compiled by XLA
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def build_models(config, vgg_weights=None):
    """RunConfig -> (generator, discriminator, reconstruction loss), under the configured precision."""
    from dgan_tf.losses import ReconstructionLoss
    from dgan_tf.models.discriminator import build_discriminator
    from dgan_tf.models.generator import build_generator

    generator = build_generator(config.image_size, architecture=config.architecture, norm=config.norm,
                                warp_sampling=config.warp_sampling, width=config.width, heatmaps=config.heatmaps,
                                warp_gradient=config.warp_gradient)
    discriminator = build_discriminator(config.image_size, norm=config.norm, width=config.width,
                                        heatmaps=config.heatmaps)
    # vgg_weights: a file path, None (the standard Keras location) or "random" (tests only, explicit).
    random_vgg = vgg_weights == "random"
    reconstruction = ReconstructionLoss(
        config.reconstruction, config.features, nn_size=config.nn_size,
        vgg_weights_path=None if random_vgg else vgg_weights, vgg_weights="random" if random_vgg else "imagenet",
        vgg_mean=config.vgg_mean)
    return generator, discriminator, reconstruction


def adam_optimizer(config):
    """Adam of the run (SPEC §6): lr, beta_1, beta_2 and epsilon (1e-8, Keras 2.0.8's) from the config."""
    return keras.optimizers.Adam(learning_rate=config.learning_rate, beta_1=config.beta_1, beta_2=config.beta_2,
                                 epsilon=config.adam_epsilon)


def default_strategy():
    """MirroredStrategy over all GPUs when several are visible (TensorFlow backend), else None."""
    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    if len(tf.config.list_physical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return None


def prepare_dataset(config):
    """Make sure the run's data is there (the synthetic set is created on first use); return its DatasetConfig."""
    from dgan_tf.data.datasets import get_dataset

    data = get_dataset(config.dataset, data_root=config.data_root, image_size=config.image_size)
    if config.dataset == "synthetic":
        from dgan_tf.data.synthetic import ensure_synthetic_dataset, is_complete

        if not is_complete(data.data_dir):  # any complete synthetic set is used as it is
            print(f"Creating the synthetic dataset in {data.data_dir} (first use)", flush=True)
            ensure_synthetic_dataset(data.data_dir, image_size=config.image_size)
    data.check_present("train")
    return data


class Trainer:
    """Trains one run into `output_dir`, resuming from its last complete checkpoint."""

    def __init__(self, config, output_dir, xla=None, vgg_weights=None, progress=True, log_every=10,
                 run_eagerly=False, strategy="auto"):
        self.config = config
        self.output_dir = Path(output_dir)
        self.xla = default_xla() if xla is None else bool(xla)
        self.vgg_weights = vgg_weights
        self.progress = progress
        self.log_every = log_every
        self.run_eagerly = run_eagerly  # TensorFlow only: skip tf.function (debugging, fast loop tests)
        self.strategy = strategy  # "auto": MirroredStrategy with several GPUs; or a tf.distribute strategy
        self.backend = keras.backend.backend()
        if config.precision == "mixed_float16" and self.backend != "tensorflow":
            raise ValueError("precision=mixed_float16 needs loss scaling, supported on the TensorFlow backend only; "
                             "use mixed_bfloat16 on JAX")
        self.step = 0
        self.last_losses = {}
        self.trackers = {}  # one keras.metrics.Mean per loss name: TensorBoard gets the mean over each log interval
        self._good_checkpoints = set()  # names of checkpoint files known to be readable (rotation's cache)
        self._stop_signal = None

    # ---- setup
    def setup(self):
        config = self.config
        keras.utils.set_random_seed(config.seed)
        self.data = prepare_dataset(config)
        self._make_data()
        if self.strategy == "auto":
            self.strategy = default_strategy()
        previous_policy = keras.mixed_precision.global_policy()
        keras.mixed_precision.set_global_policy(config.precision)  # the models keep it once built
        try:
            if self.strategy is not None:
                with self.strategy.scope():
                    self._make_gan(loss_scale=1.0 / self.strategy.num_replicas_in_sync)
            else:
                self._make_gan()
        finally:
            keras.mixed_precision.set_global_policy(previous_policy)
        for path in checkpoints.remove_partial(self.output_dir):
            print(f"removed {path}: a partial file left by an interrupted write", file=sys.stderr, flush=True)
        save_config(config, self.output_dir)
        restored = checkpoints.restore_latest(self.output_dir, self.gan)  # NoUsableCheckpoint: files, none usable
        self._saved_step = None
        if restored is not None:
            self.step, path = restored
            self._saved_step = self.step
            self._good_checkpoints.add(path.name)
        self._make_step()
        return self

    def _make_data(self):
        from dgan_tf.data.pipeline import ClearErrorIterator, dataset_for_split

        config = self.config
        per_iteration = config.batch_size * MINIBATCHES_PER_ITERATION
        dataset, self.train_pairs, _, paths = dataset_for_split(
            self.data, "train", per_iteration, shuffle=True, seed=config.seed)
        self.pairs_per_pass = len(self.train_pairs)
        self._dataset = dataset
        self.batches = ClearErrorIterator(dataset, paths, config.image_size)
        self.sample_batch = self._fixed_samples()

    def _fixed_samples(self):
        """A fixed set of pairs for the sample grid: test pairs when there are any, else train pairs."""
        from dgan_tf.data.datasets import DatasetNotFoundError
        from dgan_tf.data.pipeline import NoPairsError, dataset_for_split

        def first_batch(split):
            # drop_remainder=False: a split of fewer pairs than the grid still gives samples
            dataset, _, _, _ = dataset_for_split(self.data, split, SAMPLES_IN_GRID, shuffle=False, repeat=False,
                                                 drop_remainder=False)
            return {k: np.asarray(v) for k, v in next(iter(dataset)).items()}

        try:
            self.data.check_present("test")
            return first_batch("test")
        except (DatasetNotFoundError, NoPairsError):
            return first_batch("train")

    def _make_gan(self, loss_scale=1.0):
        generator, discriminator, reconstruction = build_models(self.config, self.vgg_weights)
        self.gan = DeformableGAN(generator, discriminator, reconstruction,
                                 reconstruction_weight=self.config.reconstruction_weight, loss_scale=loss_scale)
        g_opt, d_opt = adam_optimizer(self.config), adam_optimizer(self.config)
        if self.config.precision == "mixed_float16":
            g_opt, d_opt = keras.optimizers.LossScaleOptimizer(g_opt), keras.optimizers.LossScaleOptimizer(d_opt)
        self.gan.compile(generator_optimizer=g_opt, discriminator_optimizer=d_opt)

    def _make_step(self):
        if self.backend == "jax":
            from dgan_tf.training.jax_step import assign_jax_state, jax_state, make_jax_train_step

            jax_step = make_jax_train_step(self.gan)
            self._state = jax_state(self.gan)

            def step(batch):
                batch = {k: np.asarray(v) for k, v in batch.items()}
                self._state, losses = jax_step(self._state, batch)
                return losses

            self.sync_variables = lambda: assign_jax_state(self.gan, self._state)
            # Keras's jitted predict donates the variables' buffers: take the state back from them after it.
            self.reload_state = lambda: setattr(self, "_state", jax_state(self.gan))
            self.step_fn = step
            return
        import tensorflow as tf

        self.sync_variables = self.reload_state = lambda: None
        if self.run_eagerly:
            self.step_fn = self.gan.train_step
            return
        if self.strategy is None:
            self.step_fn = tf.function(self.gan.train_step, jit_compile=self.xla, reduce_retracing=True)
            return
        strategy = self.strategy
        self.batches = iter(strategy.experimental_distribute_dataset(self._dataset))

        @tf.function(jit_compile=False)
        def distributed(batch):
            losses = strategy.run(tf.function(self.gan.train_step, jit_compile=self.xla), args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in losses.items()}

        self.step_fn = distributed

    # ---- outputs
    def save_checkpoint(self):
        self.sync_variables()
        path = checkpoints.save_checkpoint(self.output_dir, self.gan, self.step, known_good=self._good_checkpoints)
        self._saved_step = self.step
        return path

    def write_samples(self, writer=None):
        """Write samples/step-N.png and samples/latest.png (source | target pose | generated | target)."""
        from dgan_tf.visualize import sample_grid, write_image_atomic

        self.sync_variables()
        batch = self.sample_batch
        generated = keras.ops.convert_to_numpy(self.gan.generator.predict_on_batch(generator_inputs(batch)))
        self.reload_state()
        grid = sample_grid(batch["source_image"], batch["target_keypoints"], generated.astype(np.float32),
                           batch["target_image"])
        folder = self.output_dir / "samples"
        write_image_atomic(folder / f"step-{self.step:08d}.png", grid)
        write_image_atomic(folder / "latest.png", grid)
        if writer is not None:
            writer.image("samples", grid[None], self.step)
        return grid

    def save_generator(self):
        """Final generator as a `.keras` file, written atomically."""
        import os

        from dgan_tf.files import write_error

        self.sync_variables()
        path = self.output_dir / "generator.keras"
        tmp = self.output_dir / ".generator.tmp.keras"
        try:
            self.gan.generator.save(tmp)
            os.replace(tmp, path)
        except OSError as error:
            if tmp.exists():
                tmp.unlink()
            raise write_error(error, path) from None
        return path

    # ---- loss trackers
    def _track(self, losses):
        for name, value in losses.items():
            if name not in self.trackers:
                self.trackers[name] = keras.metrics.Mean(name=name)
            self.trackers[name].update_state(value)

    def _tracked_means(self):
        """{name: mean since the last call}, then the trackers start over."""
        means = {name: float(tracker.result()) for name, tracker in self.trackers.items()}
        for tracker in self.trackers.values():
            tracker.reset_state()
        return means

    # ---- interruptions
    def _on_signal(self, signum, frame):
        if self._stop_signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now, without the checkpoint
        self._stop_signal = signum
        print(f"\n{signal.Signals(signum).name} received: the current iteration finishes, then a checkpoint is "
              "saved and training stops (Ctrl-C again to stop at once, without it)", file=sys.stderr, flush=True)

    def _install_signal_handlers(self):
        """SIGINT/SIGTERM -> finish the step, save, stop. Returns the previous handlers (none off the main thread)."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        previous = {}
        for signum in STOP_SIGNALS:
            previous[signum] = signal.signal(signum, self._on_signal)
        return previous

    def _save_if_needed(self):
        """Save a checkpoint of the current iteration unless there is one; returns its path (None before any step)."""
        if self._saved_step == self.step:
            return checkpoints.checkpoint_folder(self.output_dir) / f"ckpt-{self.step:08d}.npz"
        if self.step == 0:
            return None
        return self.save_checkpoint()

    def _next_batch(self):
        from dgan_tf.data.pipeline import ImageError

        try:
            return next(self.batches)
        except ImageError as error:
            path = self._save_if_needed()
            saved = (f"a checkpoint of iteration {self.step} is in {path}" if path is not None
                     else "no iteration had completed, so there is nothing to save")
            raise ImageError(f"{error}. Training stopped at iteration {self.step}; {saved}. Replace or remove that "
                             "image (and the pairs that name it), then run the same command again to resume.") from None

    # ---- loop
    def run(self, on_step=None):
        """Train until config.iterations; returns the last losses. `on_step(trainer)` runs after each step.

        SIGINT/SIGTERM during the loop: the current iteration finishes, a checkpoint is saved, then
        TrainingInterrupted is raised (the previous signal handlers are restored in every case).
        """
        if not hasattr(self, "gan"):
            self.setup()
        config = self.config
        writer = SummaryWriter(self.output_dir / "logs")
        bar = _progress_bar(self.step, config.iterations, self.progress)
        start, start_step = time.perf_counter(), self.step
        self._stop_signal = None
        previous_handlers = self._install_signal_handlers()
        try:
            while self.step < config.iterations:
                losses = self.step_fn(self._next_batch())
                losses = {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}
                bad = [k for k, v in losses.items() if not math.isfinite(v)]
                if bad:
                    raise TrainingDiverged(
                        f"loss {', '.join(bad)} became {losses[bad[0]]} at iteration {self.step + 1}; training "
                        f"stopped. The last good checkpoint is kept in {self.output_dir / checkpoints.CHECKPOINT_DIR}. "
                        "Try a lower learning rate or float32 precision.")
                self.step += 1
                self.last_losses = losses
                self._track(losses)
                rate = (self.step - start_step) * config.batch_size / max(time.perf_counter() - start, 1e-9)
                if self.step % self.log_every == 0 or self.step == config.iterations:
                    writer.scalars(self._tracked_means(), self.step)
                    writer.scalars({"images_per_second": rate}, self.step)
                bar.update(1)
                bar.set_postfix({**{k: f"{v:.3g}" for k, v in losses.items()}, "img/s": f"{rate:.2f}"})
                if self.step % config.sample_every == 0:
                    self.write_samples(writer)
                if self.step % config.checkpoint_every == 0:
                    self.save_checkpoint()
                if on_step is not None:
                    on_step(self)
                if self._stop_signal is not None and self.step < config.iterations:
                    raise TrainingInterrupted(self._stop_signal, self.step, self._save_if_needed())
            if self._saved_step != self.step:
                self.save_checkpoint()
            self.write_samples(writer)
            self.save_generator()
        finally:
            for signum, handler in previous_handlers.items():
                signal.signal(signum, signal.SIG_DFL if handler is None else handler)
            bar.close()
            writer.close()
        return self.last_losses


def _progress_bar(initial, total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it", dynamic_ncols=True)


class SummaryWriter:
    """TensorBoard event files through tf.summary (TensorFlow is installed with either backend)."""

    def __init__(self, logdir):
        import tensorflow as tf

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(logdir))

    def scalars(self, values, step):
        with self._writer.as_default():
            for name, value in values.items():
                self._tf.summary.scalar(name, value, step=step)

    def image(self, name, images, step):
        with self._writer.as_default():
            self._tf.summary.image(name, images, step=step)

    def close(self):
        self._writer.flush()
        self._writer.close()

