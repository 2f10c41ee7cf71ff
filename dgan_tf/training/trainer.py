"""The training loop: the backend's step, checkpoints, samples, TensorBoard, the NaN stop and interruptions.

It trains what `dgan_tf.build` made (a compiled DeformableGAN and its TrainingData) into a `dgan_tf.run.Run`.
The step is `DeformableGAN.train_step` in a `tf.function` (XLA on GPU by default) on TensorFlow and
`make_jax_train_step` on JAX; with a tf.distribute strategy the step runs on every replica.

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

import keras
import numpy as np

from dgan_tf.training.gan import generator_inputs
from dgan_tf.training.tensorboard import SummaryWriter


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


class Trainer:
    """Trains a built GAN on its TrainingData until config.iterations, writing into `run` (a dgan_tf.run.Run)."""

    def __init__(self, config, run, gan, data, *, strategy=None, xla=False, run_eagerly=False, progress=True,
                 log_every=10):
        self.config = config
        self.run = run
        self.gan = gan
        self.data = data
        self.batches = data.batches
        self.sample_batch = data.sample_batch
        self.strategy = strategy  # None, or the tf.distribute strategy the GAN was built under
        self.xla = bool(xla)
        self.run_eagerly = run_eagerly  # TensorFlow only: skip tf.function (debugging, fast loop tests)
        self.progress = progress
        self.log_every = log_every
        self.backend = keras.backend.backend()
        self.step = 0
        self.last_losses = {}
        self.trackers = {}  # one keras.metrics.Mean per loss name: TensorBoard gets the mean over each log interval
        self._good_checkpoints = set()  # names of checkpoint files known to be readable (rotation's cache)
        self._stop_signal = None
        self._saved_step = None

    # ---- start
    def resume(self):
        """Restore the run's newest complete checkpoint (or start at 0), then record the config and make the step.

        A refused start writes nothing (only the temporary files of interrupted writes are removed first):
        NoUsableCheckpoint (checkpoint files exist, none verifies), StartRefused (a finished generator.keras without
        checkpoints, or a run already past config.iterations).
        """
        for path in self.run.remove_partial_files():
            print(f"removed {path}: a partial file left by an interrupted write", file=sys.stderr, flush=True)
        restored = self.run.restore_latest(self.gan)
        self.run.check_start(None if restored is None else restored[0], self.config.iterations)
        if restored is not None:
            self.step, path = restored
            self._saved_step = self.step
            self._good_checkpoints.add(path.name)
        self.run.save_config(self.config)
        self._make_step()
        return self

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
        self.batches = iter(strategy.experimental_distribute_dataset(self.data.dataset))

        @tf.function(jit_compile=False)
        def distributed(batch):
            losses = strategy.run(tf.function(self.gan.train_step, jit_compile=self.xla), args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in losses.items()}

        self.step_fn = distributed

    # ---- outputs
    def save_checkpoint(self):
        self.sync_variables()
        path = self.run.save_checkpoint(self.gan, self.step, known_good=self._good_checkpoints)
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
        write_image_atomic(self.run.sample_path(self.step), grid)
        write_image_atomic(self.run.latest_sample_path, grid)
        if writer is not None:
            writer.image("samples", grid[None], self.step)
        return grid

    def save_generator(self):
        """Final generator as generator.keras, written atomically."""
        self.sync_variables()
        return self.run.save_generator(self.gan.generator)

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
            return self.run.checkpoint_path(self.step)
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
    def train(self, on_step=None):
        """Train until config.iterations; returns the last losses. `on_step(trainer)` runs after each step.

        SIGINT/SIGTERM during the loop: the current iteration finishes, a checkpoint is saved, then
        TrainingInterrupted is raised (the previous signal handlers are restored in every case).
        """
        writer = SummaryWriter(self.run.logs_dir)
        bar = _progress_bar(self.step, self.config.iterations, self.progress)
        self._clock = (time.perf_counter(), self.step)
        self._stop_signal = None
        previous_handlers = self._install_signal_handlers()
        try:
            while self.step < self.config.iterations:
                self._iteration(writer, bar)
                if on_step is not None:
                    on_step(self)
                if self._stop_signal is not None and self.step < self.config.iterations:
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

    def _iteration(self, writer, bar):
        """One step, then what is due at the new iteration: logs, progress, samples, a checkpoint."""
        losses = self._finite(self.step_fn(self._next_batch()))
        self.step += 1
        self.last_losses = losses
        self._track(losses)
        config = self.config
        start, start_step = self._clock
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

    def _finite(self, losses):
        """The step's losses as floats; TrainingDiverged (the last good checkpoint kept) when one is NaN or Inf."""
        losses = {k: float(keras.ops.convert_to_numpy(v)) for k, v in losses.items()}
        bad = [k for k, v in losses.items() if not math.isfinite(v)]
        if bad:
            raise TrainingDiverged(
                f"loss {', '.join(bad)} became {losses[bad[0]]} at iteration {self.step + 1}; training stopped. The "
                f"last good checkpoint is kept in {self.run.checkpoint_dir}. Try a lower learning rate or float32 "
                "precision.")
        return losses


def _progress_bar(initial, total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it", dynamic_ncols=True)
