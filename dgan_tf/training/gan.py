"""The GAN: generator, discriminator and their named losses; one D update then one G update per iteration (SPEC §6).

A training batch holds three minibatches stacked on the batch axis, as the original drew them: D's real
examples, the pairs G fakes for D (a different minibatch), and the pairs of the G update.

`DeformableGAN` is a plain class, not a `keras.Model`: it is never saved whole (the generator is a
functional model saved on its own; the training state is a checkpoint), the trainer drives both backends
with one loop, and the JAX step is a pure function of the state. `train_step` is the TensorFlow step;
`dgan_tf.training.jax_step` holds the JAX one. Both take their losses from `generator_loss_terms`.
"""

import dataclasses
from typing import Callable

from keras import ops

from dgan_tf.losses import discriminator_adversarial_loss, generator_adversarial_loss

MINIBATCHES_PER_ITERATION = 3
D_LOSS, G_LOSS = "d_loss", "g_loss"


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term of the generator loss: weight * fn(target_image, generated_image, fake_prob)."""

    weight: float
    fn: Callable


def default_generator_terms(reconstruction_loss, reconstruction_weight):
    """The paper's generator loss terms by name (SPEC §5).

    To add a term, add an entry here (or pass `generator_terms` to DeformableGAN): both train steps, the
    logs, TensorBoard and the progress bar show every term under its name with no other edit.
    """
    return {
        "g_adversarial": LossTerm(1.0, lambda target, generated, fake_prob: generator_adversarial_loss(fake_prob)),
        "g_reconstruction": LossTerm(float(reconstruction_weight),
                                     lambda target, generated, fake_prob: reconstruction_loss(target, generated)),
    }


def split_minibatches(batch):
    """Dict of (3B, ...) tensors -> three dicts of (B, ...): D real, D fake, G update."""
    size = ops.shape(batch["source_image"])[0] // MINIBATCHES_PER_ITERATION
    return tuple({k: v[i * size:(i + 1) * size] for k, v in batch.items()} for i in range(3))


def generator_inputs(pairs):
    return [pairs["source_image"], pairs["source_keypoints"], pairs["target_keypoints"]]


def discriminator_inputs(pairs, image):
    return [pairs["source_image"], pairs["source_keypoints"], image, pairs["target_keypoints"]]


class DeformableGAN:
    """Holds G, D, their optimisers and the named loss terms; loss weights are constructor arguments."""

    def __init__(self, generator, discriminator, reconstruction_loss=None, reconstruction_weight=100.0,
                 loss_scale=1.0, generator_terms=None):
        if generator_terms is None:
            if reconstruction_loss is None:
                raise ValueError("DeformableGAN needs a reconstruction_loss or explicit generator_terms")
            generator_terms = default_generator_terms(reconstruction_loss, reconstruction_weight)
        reserved = {D_LOSS, G_LOSS} & set(generator_terms)
        if reserved:
            raise ValueError(f"generator_terms may not be named {sorted(reserved)}: those names are the totals")
        self.generator = generator
        self.discriminator = discriminator
        self.generator_terms = dict(generator_terms)
        # 1 / replicas under tf.distribute, so that summed replica gradients are means.
        self.loss_scale = float(loss_scale)
        self.generator_optimizer = self.discriminator_optimizer = None

    @property
    def loss_names(self):
        """Names of the values every train step returns, in log order."""
        return (D_LOSS, *self.generator_terms, G_LOSS)

    def compile(self, generator_optimizer, discriminator_optimizer):
        """Attach the optimisers and create their variables (checkpoints and the JAX state need them)."""
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    def discriminator_loss(self, real_prob, fake_prob):
        return discriminator_adversarial_loss(ops.cast(real_prob, "float32"), ops.cast(fake_prob, "float32"))

    def generator_losses(self, fake_prob, target_image, generated):
        """{term name: unweighted value}, and the weighted total."""
        target, generated, fake_prob = (ops.cast(x, "float32") for x in (target_image, generated, fake_prob))
        values = {name: term.fn(target, generated, fake_prob) for name, term in self.generator_terms.items()}
        total = sum(term.weight * values[name] for name, term in self.generator_terms.items())
        return values, total

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
            terms, g_loss = self.generator_losses(fake_prob, update["target_image"], generated)
            g_scaled = self._scale(self.generator_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_variables), g_variables))
        return {D_LOSS: d_loss, **terms, G_LOSS: g_loss}

    def _scale(self, optimizer, loss):
        loss = loss * self.loss_scale
        return optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
