"""The GAN: generator, discriminator and the named generator loss terms; one D update then one G update per iteration.

A training batch holds three minibatches stacked on the batch axis, as the original drew them (the gan
submodule of pose-gan 8693ec4, gan/train.py:58-69, Trainer.train_one_step): D's real examples, the pairs G
fakes for D (a different minibatch), and the pairs of the G update.

`DeformableGAN` is a plain class, not a `keras.Model`: it is never saved whole (the generator is a
functional model saved on its own; the training state is a checkpoint), the trainer drives both backends
with one loop, and the JAX step is a pure function of the state. `train_step` is the TensorFlow step;
`dgan_tf.training.jax_step` holds the JAX one. Both take their losses from `generator_losses(context)`,
where the context (`dgan_tf.loss_terms.LossContext`) comes from `loss_context`.
"""

from keras import ops

from dgan_tf.loss_terms import LossContext
from dgan_tf.losses import discriminator_adversarial_loss

MINIBATCHES_PER_ITERATION = 3
D_LOSS, G_LOSS = "d_loss", "g_loss"


def split_minibatches(batch):
    """Dict of (3B, ...) tensors -> three dicts of (B, ...): D real, D fake, G update."""
    size = ops.shape(batch["source_image"])[0] // MINIBATCHES_PER_ITERATION
    return tuple({k: v[i * size:(i + 1) * size] for k, v in batch.items()} for i in range(3))


def generator_inputs(pairs):
    return [pairs["source_image"], pairs["source_keypoints"], pairs["target_keypoints"]]


def discriminator_inputs(pairs, image):
    return [pairs["source_image"], pairs["source_keypoints"], image, pairs["target_keypoints"]]


def loss_context(pairs, generated, discriminate, with_features):
    """The LossContext of a G update. discriminate(pairs, image, with_features) -> (probabilities, features),
    the backend's call of D; D's features are computed only `with_features` (a term needs them)."""
    fake_prob, fake_features = discriminate(pairs, generated, with_features)
    real_features = ()
    if with_features:
        _, real_features = discriminate(pairs, pairs["target_image"], True)
        real_features = tuple(ops.stop_gradient(f) for f in real_features)
    as_float = (lambda x: ops.cast(x, "float32"))
    return LossContext(
        source_image=as_float(pairs["source_image"]), source_keypoints=pairs["source_keypoints"],
        target_keypoints=pairs["target_keypoints"], target_image=as_float(pairs["target_image"]),
        generated_image=as_float(generated), fake_prob=as_float(fake_prob),
        fake_features=tuple(fake_features), real_features=real_features)


class DeformableGAN:
    """Holds G, D, their optimisers and the named loss terms {name: dgan_tf.loss_terms.LossTerm}."""

    def __init__(self, generator, discriminator, generator_terms, loss_scale=1.0):
        reserved = {D_LOSS, G_LOSS} & set(generator_terms)
        if reserved:
            raise ValueError(f"generator_terms may not be named {sorted(reserved)}: those names are the totals")
        if not generator_terms:
            raise ValueError("DeformableGAN needs at least one generator loss term (every weight is 0)")
        self.generator = generator
        self.discriminator = discriminator
        self.generator_terms = dict(generator_terms)
        self.needs_discriminator_features = any(t.needs_discriminator_features for t in generator_terms.values())
        # D with its intermediate activations as extra outputs (same weights), built only when a term reads them.
        self.discriminator_features = None
        if self.needs_discriminator_features:
            from dgan_tf.models.discriminator import discriminator_with_features

            self.discriminator_features = discriminator_with_features(discriminator)
        # 1 / replicas under tf.distribute, so that summed replica gradients are means.
        self.loss_scale = float(loss_scale)
        self.generator_optimizer = self.discriminator_optimizer = None

    def compile(self, generator_optimizer, discriminator_optimizer):
        """Attach the optimisers and create their variables (checkpoints and the JAX state need them)."""
        self.generator_optimizer = generator_optimizer
        self.discriminator_optimizer = discriminator_optimizer
        generator_optimizer.build(self.generator.trainable_variables)
        discriminator_optimizer.build(self.discriminator.trainable_variables)

    def discriminator_loss(self, real_prob, fake_prob):
        return discriminator_adversarial_loss(ops.cast(real_prob, "float32"), ops.cast(fake_prob, "float32"))

    def generator_losses(self, context):
        """{term name: unweighted value} and the weighted total, from one LossContext."""
        values = {name: term.fn(context) for name, term in self.generator_terms.items()}
        total = sum(term.weight * values[name] for name, term in self.generator_terms.items())
        return values, total

    def _discriminate(self, pairs, image, with_features):
        """D's probabilities (and features) on the TensorFlow backend, in training mode."""
        inputs = discriminator_inputs(pairs, image)
        if not with_features:
            return self.discriminator(inputs, training=True), ()
        probabilities, *features = self.discriminator_features(inputs, training=True)
        return probabilities, tuple(features)

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
            context = loss_context(update, generated, self._discriminate, self.needs_discriminator_features)
            terms, g_loss = self.generator_losses(context)
            g_scaled = self._scale(self.generator_optimizer, g_loss)
        g_variables = self.generator.trainable_variables
        self.generator_optimizer.apply_gradients(zip(tape.gradient(g_scaled, g_variables), g_variables))
        return {D_LOSS: d_loss, **terms, G_LOSS: g_loss}

    def _scale(self, optimizer, loss):
        loss = loss * self.loss_scale
        return optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
