"""The training loop: the backend's step, checkpoints, samples, TensorBoard, the NaN stop and interruptions.

It trains what `dgan_tf.build` made (a compiled DeformableGAN and its TrainingData) into a `dgan_tf.run.Run`.
The step is `DeformableGAN.train_step` in a `tf.function` (XLA on GPU by default) on TensorFlow and
`make_jax_train_step` on JAX; with a tf.distribute strategy the step runs on every replica, and on JAX with several
devices the step is sharded over all of them.

Interruptions lose at most the iterations since the last checkpoint, and nothing where the process can act:
SIGTERM and Ctrl-C (what clusters send on preemption) finish the current iteration, save a checkpoint and raise
TrainingInterrupted; an image that becomes unreadable saves a checkpoint of the last completed iteration, then
raises an ImageError naming the file.

In a multi-worker job (a `dgan_tf.training.cluster.Cluster`) every worker runs this loop in step with the others:
only the chief writes (checkpoints, samples, TensorBoard, generator.keras, config.json); every worker restores the
checkpoint the chief chose; a signal received by any worker is all-reduced after each iteration, so all stop after
the same one, the chief saving once; a worker that dies makes the others raise WorkerLost.
"""

import contextlib
import math
import signal
import sys
import threading
import time

import keras
import numpy as np

from dgan_tf.run.folder import StartRefused
from dgan_tf.training.cluster import WORKER_LOST_EXIT, Cluster, engine_reason
from dgan_tf.training.gan import generator_inputs
from dgan_tf.training.tensorboard import SummaryWriter


class TrainingDiverged(RuntimeError):
    """A loss became NaN or Inf; the last good checkpoint is kept."""


CHIEF_REFUSED = -2  # what the chief sends at the start instead of its checkpoint's step when it will not start


class TrainingInterrupted(Exception):
    """SIGTERM or SIGINT stopped training after a checkpoint of the current iteration was saved."""

    def __init__(self, signum, step, checkpoint, where=""):
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.signal_name = signal.Signals(signum).name
        super().__init__(f"{self.signal_name} received{where}: stopped after iteration {step}; checkpoint "
                         f"{checkpoint} saved. Run the same command again to resume.")

    @property
    def exit_code(self):
        """128 + the signal number, as a shell reports a process stopped by that signal (130 SIGINT, 143 SIGTERM)."""
        return 128 + self.signum


class WorkerLost(RuntimeError):
    """A collective operation of a multi-worker job failed: a worker died or the network between them failed."""

    exit_code = WORKER_LOST_EXIT

    def __init__(self, cluster, step, checkpoint, error, starting=False):
        reason = f"{type(error).__name__}: {engine_reason(error)}"
        if starting:  # before any iteration: the chief may have stopped on its own error before its first exchange
            super().__init__(
                f"worker lost: a worker stopped while the {cluster.num_workers} workers were starting ({reason}), so "
                f"this one ({cluster.describe()}) stops too. If the chief (worker 0) printed an error (its run "
                "folder, its lock, its data, a flag), fix that; then start all the workers again with the same "
                "command.")
            return
        resume = (f"the last checkpoint, {checkpoint}" if checkpoint is not None
                  else "iteration 0 (no checkpoint was written yet)")
        super().__init__(
            f"worker lost: a collective operation of the {cluster.num_workers} workers failed during iteration "
            f"{step + 1} ({reason}). A worker stopped (killed, preempted, out of memory) or the network between "
            f"them failed, so this one ({cluster.describe()}) stops too. Start all {cluster.num_workers} workers "
            f"again with the same command: they resume from {resume}.")


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Trainer:
    """Trains a built GAN on its TrainingData until config.iterations, writing into `run` (a dgan_tf.run.Run)."""

    def __init__(self, config, run, gan, data, *, strategy=None, xla=False, run_eagerly=False, progress=True,
                 log_every=10, cluster=None):
        self.config = config
        self.run = run
        self.gan = gan
        self.data = data
        self.batches = None  # an iterator over the training batches, made with the step
        self.sample_batch = data.sample_batch
        self.strategy = strategy  # None, or the tf.distribute strategy the GAN was built under
        self.cluster = cluster or Cluster()  # the job's workers; only the chief writes
        self.chief = self.cluster.is_chief
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

    @property
    def global_batch(self):
        """Pairs per minibatch in all: config.batch_size on every replica (device) of the job."""
        if self.strategy is not None:
            return self.config.batch_size * self.strategy.num_replicas_in_sync
        if self.backend == "jax":
            import jax

            return self.config.batch_size * jax.device_count()
        return self.config.batch_size

    # ---- start
    def resume(self):
        """Restore the run's newest complete checkpoint (or start at 0), then record the config and make the step.

        A refused start writes nothing (only the temporary files of interrupted writes are removed first):
        NoUsableCheckpoint (checkpoint files exist, none verifies), StartRefused (a finished generator.keras without
        checkpoints, or a run already past config.iterations). In a multi-worker job the chief chooses the
        checkpoint and every other worker restores that one.
        """
        restored, refused = None, None
        if self.chief:
            for path in self.run.remove_partial_files():
                print(f"removed {path}: a partial file left by an interrupted write", file=sys.stderr, flush=True)
            try:
                restored = self.run.restore_latest(self.gan)
                self.run.check_start(None if restored is None else restored[0], self.config.iterations)
            except Exception as error:  # told to the other workers first, so that they stop with its reason
                if not self.cluster.distributed:
                    raise
                refused = error
        if self.cluster.distributed:
            with self._collective(starting=True):
                step = self.cluster.chief_value(CHIEF_REFUSED if refused else -1 if restored is None else restored[0])
            if refused is not None:
                raise refused
            if step == CHIEF_REFUSED:
                raise StartRefused(f"{self.cluster.describe()}: the chief (worker 0) refused to start, and so does "
                                   "this worker; the chief's message says why. Nothing was written")
            if not self.chief and step >= 0:
                restored = (step, self._restore_chiefs_checkpoint(step))
        if not self.chief:
            self.run.check_start(None if restored is None else restored[0], self.config.iterations)
        if restored is not None:
            self.step, path = restored
            self._saved_step = self.step
            self._good_checkpoints.add(path.name)
        if self.chief:
            self.run.save_config(self.config)
        self._make_step()
        return self

    def _restore_chiefs_checkpoint(self, step):
        from dgan_tf.run.checkpoints import CheckpointError

        path = self.run.checkpoint_path(step)
        try:
            self.run.restore_step(self.gan, step)
        except CheckpointError as error:
            raise CheckpointError(f"{self.cluster.describe()} cannot restore the checkpoint the chief restored: "
                                  f"{error}. Every worker must be given the same --run folder, on storage they all "
                                  "share") from None
        return path

    def _make_step(self):
        if self.backend == "jax":
            self._make_jax_step()
            return
        import tensorflow as tf

        self.sync_variables = self.reload_state = lambda: None
        if self.strategy is None:
            self.batches = self.data.batches
            self.step_fn = (self.gan.train_step if self.run_eagerly
                            else tf.function(self.gan.train_step, jit_compile=self.xla, reduce_retracing=True))
            return
        strategy = self.strategy
        # Each element is one replica's batch (3 B pairs), dealt to the local replicas in turn; the dataset is already
        # this worker's share of the pairs (experimental_distribute_dataset would split each element instead).
        from dgan_tf.data.pipeline import ClearErrorIterator

        self.batches = ClearErrorIterator(strategy.distribute_datasets_from_function(lambda _: self.data.dataset),
                                          self.data.paths, self.data.image_size)  # a bad image named, as without
        replica_step = (self.gan.train_step if self.run_eagerly
                        else tf.function(self.gan.train_step, jit_compile=self.xla))

        def distributed(batch):
            losses = strategy.run(replica_step, args=(batch,))
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in losses.items()}

        self.step_fn = distributed if self.run_eagerly else tf.function(distributed, jit_compile=False)

    def _make_jax_step(self):
        from dgan_tf.training import jax_step

        mesh = jax_step.data_parallel_mesh()
        step_fn = jax_step.make_jax_train_step(self.gan, mesh)
        if mesh is None:
            place, local, to_devices = (lambda state: state), (lambda state: state), _as_numpy
        else:
            place, local = (lambda state: jax_step.replicate(state, mesh)), jax_step.local_copy
            to_devices = (lambda batch: jax_step.global_batch(batch, mesh))
        self._state = place(jax_step.jax_state(self.gan))
        self.batches = self.data.batches

        def step(batch):
            self._state, losses = step_fn(self._state, to_devices(batch))
            return losses

        self.sync_variables = lambda: jax_step.assign_jax_state(self.gan, local(self._state))
        # Keras's jitted predict donates the variables' buffers: take the state back from them after it.
        self.reload_state = lambda: setattr(self, "_state", place(jax_step.jax_state(self.gan)))
        self.step_fn = step

    # ---- outputs
    def save_checkpoint(self):
        """The chief writes checkpoints/ckpt-N.npz; the other workers note the step (it is the same path)."""
        path = self.run.checkpoint_path(self.step)
        if self.chief:
            self.sync_variables()
            path = self.run.save_checkpoint(self.gan, self.step, known_good=self._good_checkpoints)
        self._saved_step = self.step
        return path

    def write_samples(self, writer=None):
        """Write samples/step-N.png and samples/latest.png (source | target pose | generated | target); the chief only."""
        from dgan_tf.visualize import sample_grid, write_image_atomic

        if not self.chief:
            return None
        self.sync_variables()
        batch = self.sample_batch
        if self.strategy is not None:  # predict_on_batch would split the batch over the workers and gather it
            generated = self.gan.generator(generator_inputs(batch), training=False)
        else:
            generated = self.gan.generator.predict_on_batch(generator_inputs(batch))
        generated = keras.ops.convert_to_numpy(generated)
        self.reload_state()
        grid = sample_grid(batch["source_image"], batch["target_keypoints"], generated.astype(np.float32),
                           batch["target_image"])
        write_image_atomic(self.run.sample_path(self.step), grid)
        write_image_atomic(self.run.latest_sample_path, grid)
        if writer is not None:
            writer.image("samples", grid[None], self.step)
        return grid

    def save_generator(self):
        """Final generator as generator.keras, written atomically; the chief only."""
        if not self.chief:
            return None
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
            if self.cluster.distributed:  # the others stop at the next exchange (worker lost): nobody saves now
                last = self._saved_step
                saved = (f"the job resumes from the last checkpoint, {self.run.checkpoint_path(last)}"
                         if last is not None else "no checkpoint was written yet")
            else:
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
        writer = SummaryWriter(self.run.logs_dir if self.chief else None)
        bar = _progress_bar(self.step, self.config.iterations, self.progress)
        self._clock = (time.perf_counter(), self.step)
        self._global_batch = self.global_batch  # images/s of the whole job
        self._stop_signal = None
        previous_handlers = self._install_signal_handlers()
        try:
            while self.step < self.config.iterations:
                self._iteration(writer, bar)
                if on_step is not None:
                    on_step(self)
                if self.step < self.config.iterations:
                    signum, where = self._agreed_stop()
                    if signum is not None:
                        raise TrainingInterrupted(signum, self.step, self._save_if_needed(), where)
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

    def _agreed_stop(self):
        """(signal, where) when this worker or, in a multi-worker job, any worker received SIGTERM or Ctrl-C; SIGTERM
        first. Every worker of a job asks after each iteration, so that all stop after the same one."""
        if not self.cluster.distributed:
            return self._stop_signal, ""
        received = np.zeros(self.cluster.num_workers, dtype=np.int64)
        received[self.cluster.index] = self._stop_signal or 0
        with self._collective():
            received = self.cluster.sum_over_workers(received)
        if not received.any():
            return None, ""
        signum = signal.SIGTERM if signal.SIGTERM in received else int(received[received != 0][0])
        workers = [str(i) for i, s in enumerate(received) if s == signum]
        return signum, f" by worker {', '.join(workers)} of {self.cluster.num_workers}"

    @contextlib.contextmanager
    def _collective(self, starting=False):
        """A failed collective operation of a multi-worker job (a worker died) -> WorkerLost."""
        try:
            yield
        except Exception as error:
            if not self.cluster.is_peer_failure(error):
                raise
            checkpoint = None if self._saved_step is None else self.run.checkpoint_path(self._saved_step)
            raise WorkerLost(self.cluster, self.step, checkpoint, error, starting) from None

    def _iteration(self, writer, bar):
        """One step, then what is due at the new iteration: logs, progress, samples, a checkpoint."""
        with self._collective():
            losses = self._finite(self.step_fn(self._next_batch()))
        self.step += 1
        self.last_losses = losses
        self._track(losses)
        config = self.config
        start, start_step = self._clock
        rate = (self.step - start_step) * self._global_batch / max(time.perf_counter() - start, 1e-9)
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


def _as_numpy(batch):
    return {k: np.asarray(v) for k, v in batch.items()}


def _progress_bar(initial, total, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="it", dynamic_ncols=True)
