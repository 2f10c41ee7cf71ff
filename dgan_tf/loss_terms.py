"""The generator's loss terms by name: what each reads from one named batch context, and the registry.

A term is `fn(context) -> scalar`, where the `LossContext` of a G update holds the batch (images and poses),
G's output and D's verdicts, and, when a term asks for them, D's intermediate features on the generated and
the real image. Adding a term (feature matching, a pose loss) is one `GENERATOR_TERMS` entry here plus its
weight in the run's `loss_weights` (config.json; `train.py --loss-weight NAME=W`): both train steps, the logs,
TensorBoard and the progress bar then show it under its name.
"""

import dataclasses
from typing import Any, Callable

from keras import ops

from dgan_tf.losses import ReconstructionLoss, generator_adversarial_loss


@dataclasses.dataclass(frozen=True)
class LossContext:
    """Everything a generator loss term may read for one G update (float32 images in [-1, 1])."""

    source_image: Any  # (B, H, W, 3)
    source_keypoints: Any  # (B, 18, 2) (y, x), -1 missing
    target_keypoints: Any  # (B, 18, 2)
    target_image: Any  # (B, H, W, 3), the real image in the target pose
    generated_image: Any  # (B, H, W, 3), G's output
    fake_prob: Any  # (B, h, w, 1), D's patch probabilities for the generated image
    # D's intermediate activations (dgan_tf.models.discriminator.FEATURE_LAYERS), filled only when a term needs
    # them: on the generated image, and on the real target (no gradient).
    fake_features: tuple = ()
    real_features: tuple = ()


@dataclasses.dataclass(frozen=True)
class LossTerm:
    """One weighted term of the generator loss: weight * fn(context)."""

    weight: float
    fn: Callable
    needs_discriminator_features: bool = False


@dataclasses.dataclass(frozen=True)
class TermSpec:
    """A registry entry: `make(config, vgg_weights) -> fn(context)`, built only when the term's weight is > 0."""

    make: Callable
    needs_discriminator_features: bool = False


def _adversarial(config, vgg_weights):
    return lambda context: generator_adversarial_loss(context.fake_prob)


class ReconstructionTerm:
    """The variant's reconstruction loss between the real target and the generated image (L1 or NN, pixels or VGG)."""

    def __init__(self, config, vgg_weights):
        # vgg_weights: a file path, None (the standard Keras location) or "random" (tests only, explicit).
        random_vgg = vgg_weights == "random"
        self.loss = ReconstructionLoss(config.reconstruction, config.features, nn_size=config.nn_size,
                                       vgg_weights_path=None if random_vgg else vgg_weights,
                                       vgg_weights="random" if random_vgg else "imagenet", vgg_mean=config.vgg_mean)

    @property
    def feature_model(self):
        """The frozen VGG19 feature model, or None for pixels (the FLOP count needs it)."""
        return self.loss.feature_model

    def __call__(self, context):
        return self.loss(context.target_image, context.generated_image)


# The paper's generator loss (pose-gan conditional_gan.py:275-325 at 8693ec4, CGAN._compile_generator_loss):
# the non-saturating adversarial term plus lambda times the variant's reconstruction term.
GENERATOR_TERMS = {
    "g_adversarial": TermSpec(_adversarial),
    "g_reconstruction": TermSpec(ReconstructionTerm),
}


def build_generator_terms(config, vgg_weights=None, registry=None):
    """{name: LossTerm} of the terms whose weight in config.loss_weights is > 0, in the registry's order."""
    registry = GENERATOR_TERMS if registry is None else registry
    unknown = sorted(set(config.loss_weights) - set(registry))
    if unknown:
        raise ValueError(f"Unknown loss term {unknown[0]!r} in loss_weights. Expected names from {tuple(registry)}. "
                         f"Received: loss_weights={config.loss_weights!r}")
    terms = {}
    for name, spec in registry.items():
        weight = float(config.loss_weights.get(name, 0.0))
        if weight > 0:
            terms[name] = LossTerm(weight, spec.make(config, vgg_weights), spec.needs_discriminator_features)
    return terms


def feature_matching_loss(real_features, fake_features):
    """Mean over D's feature maps of the mean absolute difference (pix2pixHD / SPADE's feature matching)."""
    pairs = list(zip(real_features, fake_features))
    if not pairs:
        raise ValueError("feature_matching_loss needs D's features: its term must set needs_discriminator_features")
    total = sum(ops.mean(ops.abs(ops.cast(r, "float32") - ops.cast(f, "float32"))) for r, f in pairs)
    return total / len(pairs)
