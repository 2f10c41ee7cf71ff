"""The paper's ablation variants (Table 1) as named, frozen configurations: adding a variant is one entry here.
The original's commands for them: pose-gan README.md:32-51 at 8693ec4.

Each names the generator architecture, the reconstruction loss, the feature space it runs in and its
weight lambda. The lambdas 0.5 (percloss) and 0.01 (full) were tuned for VGG19 feature magnitudes.
"""

import dataclasses

from dgan_tf.options import ARCHITECTURES, FEATURES, RECONSTRUCTIONS, check_choice


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation table: generator architecture and reconstruction term."""

    name: str
    architecture: str  # one of options.ARCHITECTURES
    reconstruction: str  # one of options.RECONSTRUCTIONS
    features: str  # one of options.FEATURES
    reconstruction_weight: float  # lambda multiplying the reconstruction term

    def __post_init__(self):
        check_choice("architecture", self.architecture, ARCHITECTURES)
        check_choice("reconstruction", self.reconstruction, RECONSTRUCTIONS)
        check_choice("features", self.features, FEATURES)
        weight = self.reconstruction_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"reconstruction_weight must be a non-negative number. Received: {weight!r}")


VARIANTS = {
    "baseline": Variant("baseline", "baseline", "l1", "pixels", 100.0),
    "dsc": Variant("dsc", "two_stream", "l1", "pixels", 100.0),
    "percloss": Variant("percloss", "two_stream", "l1", "vgg19_block2_conv1", 0.5),
    "full": Variant("full", "two_stream", "nn", "vgg19_block1_conv2", 0.01),
}


def get_variant(name):
    """The named variant; unknown names fail with the list of choices."""
    if not isinstance(name, str) or name not in VARIANTS:
        raise ValueError(f"Unknown variant. Expected one of {tuple(VARIANTS)}. Received: name={name!r}")
    return VARIANTS[name]
