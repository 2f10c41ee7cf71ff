"""The JAX train step: a jitted pure function (state, batch) -> (state, losses), same losses as the TF step.

state = (g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_optimizer_vars, d_optimizer_vars),
from `jax_state(gan)`; `assign_jax_state` writes it back to the Keras variables (before saving or sampling).
"""

from dgan_tf.training.gan import D_LOSS, G_LOSS, discriminator_inputs, generator_inputs, loss_context, split_minibatches


def make_jax_train_step(gan):
    """One D update then one G update of `gan` (a compiled DeformableGAN), jitted."""
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

    @jax.jit
    def step(state, batch):
        g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_opt, d_opt = state
        real, fake, update = split_minibatches(batch)
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

    return step


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
