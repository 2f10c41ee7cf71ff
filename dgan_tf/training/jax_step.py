"""The JAX train step: a jitted pure function (state, batch) -> (state, losses), same losses as the TF step.

state = (g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_optimizer_vars, d_optimizer_vars),
from `jax_state(gan)`; `assign_jax_state` writes it back to the Keras variables (before saving or sampling).

Data parallel over several devices (local ones, and those of other processes after jax.distributed.initialize):
`make_jax_train_step(gan, mesh)` takes the state replicated on a 1-D mesh (`replicate`) and the batch sharded
along its batch axis (`global_batch`); XLA then computes each device's share and all-reduces the gradients, and
the losses, means over the global batch, come out the same on every device. The step is the same function.
"""

import numpy as np

from dgan_tf.training.gan import (D_LOSS, G_LOSS, MINIBATCHES_PER_ITERATION, discriminator_inputs, generator_inputs,
                                  loss_context, split_minibatches)

BATCH_AXIS = "batch"


def make_jax_train_step(gan, mesh=None):
    """One D update then one G update of `gan` (a compiled DeformableGAN), jitted.

    mesh: None, a batch of (3B, ...) arrays on one device; or a data-parallel mesh (`data_parallel_mesh`), a batch
    from `global_batch` (minibatches stacked first, (3, B, ...), sharded along B) and the state from `replicate`.
    """
    import jax

    generator, discriminator = gan.generator, gan.discriminator

    def d_loss_fn(d_trainable, d_non_trainable, real, fake, generated):
        real_prob, d_non_trainable = discriminator.stateless_call(
            d_trainable, d_non_trainable, discriminator_inputs(real, real["target_image"]), training=True)
        fake_prob, d_non_trainable = discriminator.stateless_call(
            d_trainable, d_non_trainable, discriminator_inputs(fake, generated), training=True)
        return gan.discriminator_loss(real_prob, fake_prob), d_non_trainable

    def g_loss_fn(g_trainable, g_non_trainable, d_trainable, d_non_trainable, update):
        generated, g_non_trainable = generator.stateless_call(
            g_trainable, g_non_trainable, generator_inputs(update), training=True)

        def discriminate(pairs, image, with_features):
            # The feature model shares D's variables in D's order (checked where it is built).
            model = gan.discriminator_features if with_features else discriminator
            outputs, _ = model.stateless_call(d_trainable, d_non_trainable, discriminator_inputs(pairs, image),
                                              training=True)
            return (outputs[0], tuple(outputs[1:])) if with_features else (outputs, ())

        context = loss_context(update, generated, discriminate, gan.needs_discriminator_features)
        terms, total = gan.generator_losses(context)
        return total, (g_non_trainable, terms)

    def step(state, batch):
        g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_opt, d_opt = state
        real, fake, update = split_minibatches(batch) if mesh is None else _stacked_minibatches(batch)
        generated, g_non_trainable = generator.stateless_call(
            g_trainable, g_non_trainable, generator_inputs(fake), training=True)
        generated = jax.lax.stop_gradient(generated)
        (d_loss, d_non_trainable), d_grads = jax.value_and_grad(d_loss_fn, has_aux=True)(
            d_trainable, d_non_trainable, real, fake, generated)
        d_trainable, d_opt = gan.discriminator_optimizer.stateless_apply(d_opt, d_grads, d_trainable)
        (g_loss, (g_non_trainable, terms)), g_grads = jax.value_and_grad(g_loss_fn, has_aux=True)(
            g_trainable, g_non_trainable, d_trainable, d_non_trainable, update)
        g_trainable, g_opt = gan.generator_optimizer.stateless_apply(g_opt, g_grads, g_trainable)
        state = (g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_opt, d_opt)
        return state, {D_LOSS: d_loss, **terms, G_LOSS: g_loss}

    if mesh is None:
        return jax.jit(step)
    replicated, batch_sharding = _shardings(mesh)
    return jax.jit(step, in_shardings=(replicated, batch_sharding), out_shardings=replicated)


def _stacked_minibatches(batch):
    """Dict of (3, B, ...) arrays -> three dicts of (B, ...): D real, D fake, G update (each device keeps its share)."""
    return tuple({k: v[i] for k, v in batch.items()} for i in range(MINIBATCHES_PER_ITERATION))


# ---- data parallel


def data_parallel_mesh():
    """The 1-D mesh of keras.distribution.DataParallel over every device of the job (all processes' devices, once
    jax.distributed is initialised), as a jax Mesh; None when there is one device."""
    import keras

    distribution = keras.distribution.DataParallel()  # keras.distribution.list_devices(): every device of the job
    if distribution.num_model_replicas == 1:
        return None
    mesh = distribution.device_mesh.backend_mesh
    assert mesh.axis_names == (BATCH_AXIS,), mesh.axis_names
    return mesh


def _shardings(mesh):
    from jax.sharding import NamedSharding, PartitionSpec

    return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec(None, BATCH_AXIS))


def replicate(state, mesh):
    """The state (the same values in every process) as arrays replicated over the mesh."""
    import jax

    replicated, _ = _shardings(mesh)
    return jax.tree.map(lambda x: jax.make_array_from_process_local_data(replicated, np.asarray(x)), state)


def local_copy(state):
    """This process's copy of a replicated state (for the Keras variables: checkpoints, samples)."""
    import jax

    return jax.tree.map(lambda x: x.addressable_data(0), state)


def global_batch(batch, mesh):
    """This process's batch, a dict of (3 B_local, ...) arrays, as one global batch of (3, B_global, ...) arrays
    sharded along B: each process gives its own pairs; B_global = B_local x the number of processes."""
    import jax

    _, sharding = _shardings(mesh)
    processes = jax.process_count()

    def place(value):
        value = np.asarray(value)
        stacked = value.reshape((MINIBATCHES_PER_ITERATION, -1) + value.shape[1:])  # (3, B_local, ...)
        shape = (MINIBATCHES_PER_ITERATION, stacked.shape[1] * processes) + stacked.shape[2:]
        return jax.make_array_from_process_local_data(sharding, stacked, shape)

    return {k: place(v) for k, v in batch.items()}


def _state_variables(gan):
    return (gan.generator.trainable_variables, gan.generator.non_trainable_variables,
            gan.discriminator.trainable_variables, gan.discriminator.non_trainable_variables,
            gan.generator_optimizer.variables, gan.discriminator_optimizer.variables)


def jax_state(gan):
    """The Keras variables' current values as the JAX step's state tuple."""
    return tuple([v.value for v in group] for group in _state_variables(gan))


def assign_jax_state(gan, state):
    """Write the JAX step's state back into the Keras variables (before saving or sampling)."""
    for group, values in zip(_state_variables(gan), state):
        for variable, value in zip(group, values):
            variable.assign(value)
