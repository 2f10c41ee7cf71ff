"""The GAN: generator + discriminator + losses, with one D update then one G update per iteration (SPEC §6).

A training batch holds three minibatches stacked on the batch axis, as the original drew them:
D's real examples, the pairs G fakes for D (a different minibatch), and the pairs of the G update.
`train_step` is the TensorFlow step (GradientTape); `make_jax_train_step` is the JAX one.
"""

import keras
from keras import ops

from dgan_tf.losses import discriminator_adversarial_loss, generator_adversarial_loss

MINIBATCHES_PER_ITERATION = 3
LOSS_NAMES = ("d_loss", "g_adversarial", "g_reconstruction", "g_loss")


def split_minibatches(batch):
    """Dict of (3B, ...) tensors -> three dicts of (B, ...): D real, D fake, G update."""
    size = ops.shape(batch["source_image"])[0] // MINIBATCHES_PER_ITERATION
    return tuple({k: v[i * size:(i + 1) * size] for k, v in batch.items()} for i in range(3))


def generator_inputs(pairs):
    return [pairs["source_image"], pairs["source_keypoints"], pairs["target_keypoints"]]


def discriminator_inputs(pairs, image):
    return [pairs["source_image"], pairs["source_keypoints"], image, pairs["target_keypoints"]]


@keras.saving.register_keras_serializable(package="dgan_tf")
class DeformableGAN(keras.Model):
    """Holds G and D; `call` is the generator. Loss weights are constructor arguments."""

    def __init__(self, generator, discriminator, reconstruction_loss, reconstruction_weight=100.0,
                 loss_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.reconstruction_loss = reconstruction_loss
        self.reconstruction_weight = float(reconstruction_weight)
        # 1 / replicas under tf.distribute, so that summed replica gradients are means.
        self.loss_scale = float(loss_scale)

    def compile(self, generator_optimizer, discriminator_optimizer, **kwargs):
        super().compile(**kwargs)
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer

    def build_optimizers(self):
        self.generator_optimizer.build(self.generator.trainable_variables)
        self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def call(self, inputs, training=False):
        return self.generator(inputs, training=training)

    def discriminator_loss(self, real_prob, fake_prob):
        return discriminator_adversarial_loss(ops.cast(real_prob, "float32"), ops.cast(fake_prob, "float32"))

    def generator_losses(self, fake_prob, target_image, generated):
        adversarial = generator_adversarial_loss(ops.cast(fake_prob, "float32"))
        reconstruction = self.reconstruction_loss(ops.cast(target_image, "float32"), ops.cast(generated, "float32"))
        return adversarial, reconstruction, adversarial + self.reconstruction_weight * reconstruction

    def train_step(self, data):
        """One D update then one G update on the TensorFlow backend; returns the losses by name."""
        import tensorflow as tf

        real, fake, update = split_minibatches(data)
        generated_for_d = ops.stop_gradient(self.generator(generator_inputs(fake), training=True))
        with tf.GradientTape() as tape:
            real_prob = self.discriminator(discriminator_inputs(real, real["target_image"]), training=True)
            fake_prob = self.discriminator(discriminator_inputs(fake, generated_for_d), training=True)
            d_loss = self.discriminator_loss(real_prob, fake_prob)
            d_scaled = self._scale(self.discriminator_optimizer, d_loss)
        d_variables = self.discriminator.trainable_variables
        self.discriminator_optimizer.apply_gradients(zip(tape.gradient(d_scaled, d_variables), d_variables))

        with tf.GradientTape() as tape:
            generated = self.generator(generator_inputs(update), training=True)
            fake_prob = self.discriminator(discriminator_inputs(update, generated), training=True)
            adversarial, reconstruction, g_loss = self.generator_losses(fake_prob, update["target_image"], generated)
            g_scaled = self._scale(self.generator_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_variables), g_variables))
        return dict(zip(LOSS_NAMES, (d_loss, adversarial, reconstruction, g_loss)))

    def _scale(self, optimizer, loss):
        loss = loss * self.loss_scale
        return optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss

    def get_config(self):
        raise NotImplementedError(
            "DeformableGAN is not saved as a whole: save `gan.generator` (a functional model) and use "
            "dgan_tf.training.checkpoints for the training state.")


def make_jax_train_step(gan):
    """A jitted pure step for the JAX backend: (state, batch) -> (state, losses).

    state = (g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_optimizer_vars, d_optimizer_vars),
    from `jax_state(gan)`; write it back to the Keras variables with `assign_jax_state`.
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
        fake_prob, _ = discriminator.stateless_call(
            d_trainable, d_non_trainable, discriminator_inputs(update, generated), training=True)
        adversarial, reconstruction, total = gan.generator_losses(fake_prob, update["target_image"], generated)
        return total, (g_non_trainable, adversarial, reconstruction)

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
        (g_loss, (g_non_trainable, adversarial, reconstruction)), g_grads = jax.value_and_grad(
            g_loss_fn, has_aux=True)(g_trainable, g_non_trainable, d_trainable, d_non_trainable, update)
        g_trainable, g_opt = gan.generator_optimizer.stateless_apply(g_opt, g_grads, g_trainable)
        state = (g_trainable, g_non_trainable, d_trainable, d_non_trainable, g_opt, d_opt)
        return state, dict(zip(LOSS_NAMES, (d_loss, adversarial, reconstruction, g_loss)))

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
