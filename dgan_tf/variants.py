"""The paper's ablation variants (SPEC §5) as named, frozen configurations.

Each names the generator architecture, the reconstruction loss, the feature space it runs in
and its weight lambda. The lambdas 0.5 (percloss) and 0.01 (full) were tuned for VGG19 feature
magnitudes: `with_features("pixels")` keeps lambda unless a new weight is given.
"""

import dataclasses

ARCHITECTURES = ("two_stream", "baseline")
RECONSTRUCTIONS = ("l1", "nn")
FEATURES = ("pixels", "vgg19_block2_conv1", "vgg19_block1_conv2")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation table: generator architecture and reconstruction term."""

    name: str
    architecture: str  # "two_stream" | "baseline"
    reconstruction: str  # "l1" | "nn"
    features: str  # "pixels" | "vgg19_block2_conv1" | "vgg19_block1_conv2"
    weight: float  # lambda multiplying the reconstruction term

    def __post_init__(self):
        for field, choices in (
            ("architecture", ARCHITECTURES), ("reconstruction", RECONSTRUCTIONS), ("features", FEATURES)
        ):
            value = getattr(self, field)
            if value not in choices:
                raise ValueError(f"Unknown {field}. Expected one of {choices}. Received: {field}={value!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or self.weight < 0:
            raise ValueError(f"weight must be a non-negative number. Received: weight={self.weight!r}")

    def with_features(self, features, weight=None):
        """A copy using `features` (e.g. "pixels" when no VGG weights); lambda kept unless `weight` given.

        Note: the configured lambdas of percloss (0.5) and full (0.01) were tuned for VGG19 feature
        magnitudes; on pixels they are probably too small, so consider passing `weight`.
        """
        return dataclasses.replace(self, features=features, weight=self.weight if weight is None else weight)

    def to_dict(self):
        """JSON-serialisable form (for the run config saved beside checkpoints)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config):
        return cls(**config)


VARIANTS = {
    "baseline": Variant("baseline", "baseline", "l1", "pixels", 100.0),
    "dsc": Variant("dsc", "two_stream", "l1", "pixels", 100.0),
    "percloss": Variant("percloss", "two_stream", "l1", "vgg19_block2_conv1", 0.5),
    "full": Variant("full", "two_stream", "nn", "vgg19_block1_conv2", 0.01),
}


def get_variant(name):
    """The named variant; unknown names fail with the list of choices."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown variant. Expected one of {tuple(VARIANTS)}. Received: name={name!r}") from None
