"""One worker of a multi-worker test job (tests/test_scale_out.py): train.py's main() on a tiny model, recording the
weights after each iteration.

    python tests/worker_job.py OUT_DIR ACTION -- TRAIN.PY FLAGS...

The weights of G and D after each iteration go to OUT_DIR/weights-<pid>.npz. ACTION, after iteration N:
"kill@N" SIGKILLs this worker (a crash), "term@N" sends it SIGTERM (a preemption), "reference@N" (JAX) trains the
global batch of all the workers' first N minibatches in this process on one device, from the same start, into
OUT_DIR/reference.npz; "none" does nothing. The TensorFlow step runs eagerly (tracing it costs 20 s or more per
worker on 2 cores) and its generator has no dropout: Keras 3 draws every tf.distribute replica's dropout masks from
one mirrored seed state, so the replicas drop the same units, which no single process reproduces. JAX draws the
masks of the global batch, as one process does.
"""

import os
import signal
import sys


def main():
    out_dir, action, separator, *train_argv = sys.argv[1:]
    assert separator == "--", sys.argv
    import keras
    import numpy as np

    import dgan_tf.build
    import dgan_tf.models.generator
    from dgan_tf.cli import train
    from dgan_tf.training.trainer import Trainer

    build_trainer = dgan_tf.build.build_trainer
    dgan_tf.build.build_trainer = lambda *a, **k: build_trainer(*a, **dict(k, run_eagerly=True))
    if keras.backend.backend() == "tensorflow":
        build_generator = dgan_tf.models.generator.build_generator
        dgan_tf.models.generator.build_generator = lambda *a, **k: build_generator(*a, **dict(k, dropout_rate=0.0))
    what, _, at = action.partition("@")
    path = os.path.join(out_dir, f"weights-{os.getpid()}.npz")
    weights, start = {}, {}

    def record(trainer):
        trainer.sync_variables()  # the JAX step keeps the state apart from the Keras variables
        weights.update({f"{trainer.cluster.index}/{key}": value for key, value in weights_of(trainer).items()})
        np.savez(path + ".tmp.npz", **weights)
        os.replace(path + ".tmp.npz", path)
        if what != "none" and trainer.step == int(at):
            if what == "reference":
                np.savez(os.path.join(out_dir, "reference.npz"), **reference(trainer, start["state"], int(at)))
            else:
                os.kill(os.getpid(), signal.SIGKILL if what == "kill" else signal.SIGTERM)

    original_train = Trainer.train

    def train_recording(trainer, on_step=None):
        from dgan_tf.training.jax_step import jax_state

        if trainer.backend == "jax":
            start["state"] = [[np.asarray(v) for v in group] for group in jax_state(trainer.gan)]

        def both(t):
            record(t)
            if on_step is not None:
                on_step(t)

        return original_train(trainer, on_step=both)

    Trainer.train = train_recording
    sys.exit(train.main(train_argv))


def weights_of(trainer, step=None):
    import numpy as np

    step = trainer.step if step is None else step
    return {f"{step}/{name}/{i}": np.asarray(value)
            for name, model in (("g", trainer.gan.generator), ("d", trainer.gan.discriminator))
            for i, value in enumerate(model.get_weights())}


def reference(trainer, state, steps):
    """{"N/g|d/i": weights} after each of `steps` iterations of the unsharded JAX step on one device, from `state`,
    on the global batch: each minibatch the workers' pairs in worker order, as the sharded step lays them out."""
    import numpy as np

    from dgan_tf.build import build_training_data, ensure_dataset
    from dgan_tf.training.gan import split_minibatches
    from dgan_tf.training.jax_step import assign_jax_state, make_jax_train_step

    workers = trainer.cluster.num_workers
    data = ensure_dataset(trainer.config)
    shards = [build_training_data(trainer.config, data, shard=(k, workers)).batches for k in range(workers)]
    step_fn, found = make_jax_train_step(trainer.gan), {}
    for step in range(1, steps + 1):
        parts = [split_minibatches({k: np.asarray(v) for k, v in next(shard).items()}) for shard in shards]
        batch = {key: np.concatenate([parts[w][m][key] for m in range(3) for w in range(workers)])
                 for key in parts[0][0]}
        state, _ = step_fn(state, batch)
        assign_jax_state(trainer.gan, state)
        found.update(weights_of(trainer, step))
    trainer.sync_variables()  # the trainer's own state back into the variables
    return found


if __name__ == "__main__":
    main()
