"""One frozen, JSON-serialisable config per training run: dataset defaults, then the variant, then overrides.

The run folder keeps it as `config.json` (dgan_tf.run.Run), so that resume, test and export reload it instead
of asking the user to repeat the training flags.
"""

import dataclasses
import json
import math
from pathlib import Path

from dgan_tf.images import ImageSize
from dgan_tf.options import (FEATURES, HEATMAPS, NORMS, PART_MAXES, PRECISIONS, RECONSTRUCTIONS, VGG_MEANS,
                             WARP_GRADIENTS, WARP_SAMPLINGS, check_choice)

# The adversarial term's weight; the reconstruction term's is the variant's lambda (dgan_tf.variants).
ADVERSARIAL_WEIGHT = 1.0


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; models get explicit arguments derived from it."""

    dataset: str
    image_size: ImageSize
    variant: str
    architecture: str  # options.ARCHITECTURES
    reconstruction: str  # options.RECONSTRUCTIONS
    features: str  # options.FEATURES
    # {generator loss term: weight}; the terms are dgan_tf.loss_terms.GENERATOR_TERMS (weight 0: not computed)
    loss_weights: dict
    nn_size: int
    batch_size: int
    iterations: int
    checkpoint_every: int
    sample_every: int
    seed: int = 0
    width: float = 1.0  # channel-width multiplier; 1.0 is the paper's architecture
    norm: str = "scalar"
    warp_sampling: str = "nearest"
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    beta_2: float = 0.999
    precision: str = "float32"
    # The original's quirks, reproduced by default; the clean choice second. In pose-gan at 8693ec4: heatmaps
    # pose_utils.py:58 under Python 2, warp gradient TF 1.x contrib's for pose_transform.py:45, the part max's
    # reduce_max pose_transform.py:59, VGG means gan/layer_utils.py:31-37 (submodule a4aa9a3), Adam
    # conditional_gan.py:259-260 with Keras 2.0.8's epsilon.
    heatmaps: str = "staircase"  # options.HEATMAPS
    warp_gradient: str = "original"  # options.WARP_GRADIENTS
    part_max: str = "split"  # options.PART_MAXES
    vgg_mean: str = "original"  # options.VGG_MEANS
    adam_epsilon: float = 1e-8  # Keras 2.0.8's default; Keras 3's is 1e-7
    data_root: str = "data"

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @property
    def reconstruction_weight(self):
        """The variant's lambda: the weight of the reconstruction term."""
        return self.loss_weights.get("g_reconstruction", 0.0)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values["image_size"] = ImageSize.of(values["image_size"])
        if "reconstruction_weight" in values:  # written before the loss terms had named weights (dgan_tf 0.2)
            values["loss_weights"] = {"g_adversarial": ADVERSARIAL_WEIGHT,
                                      "g_reconstruction": values.pop("reconstruction_weight")}
        if "caffe_mean_quirk" in values:  # written before the quirks became fields: keep what that run did
            values.setdefault("vgg_mean", "original" if values.pop("caffe_mean_quirk") else "correct")
            values = {**LEGACY_VALUES, **values}
        values = {**VALUES_BEFORE_FIELDS, **values}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config.json has unknown fields {unknown}; was it written by a newer dgan_tf?")
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# What a config.json written before these fields existed (it had `caffe_mean_quirk`) trained with.
LEGACY_VALUES = {"heatmaps": "gaussian", "warp_gradient": "exact", "adam_epsilon": 1e-7}
# What a config.json without one of these fields trained with: each came with a new default.
VALUES_BEFORE_FIELDS = {"part_max": "first"}

# Fields that may differ between a saved run and the command that resumes it.
RESUMABLE_CHANGES = ("iterations", "checkpoint_every", "sample_every", "data_root")


def build_run_config(dataset="synthetic", variant="dsc", image_size=None, **overrides):
    """Dataset defaults (the registry) -> variant -> overrides (None values are ignored)."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.variants import get_variant

    data = get_dataset(dataset, data_root=overrides.get("data_root") or "data", image_size=image_size)
    chosen = get_variant(variant)
    values = dict(
        dataset=data.name,
        image_size=ImageSize.of(data.image_size),
        variant=chosen.name,
        architecture=chosen.architecture,
        reconstruction=chosen.reconstruction,
        features=chosen.features,
        loss_weights={"g_adversarial": ADVERSARIAL_WEIGHT, "g_reconstruction": float(chosen.reconstruction_weight)},
        nn_size=int(data.nn_size),
        batch_size=data.batch_size_for(chosen.name),
        iterations=data.iterations,
        checkpoint_every=data.checkpoint_every,
        sample_every=data.sample_every,
        width=data.width,
    )
    overrides = {key: value for key, value in overrides.items() if value is not None}
    values["loss_weights"].update(overrides.pop("loss_weights", {}))
    values.update(overrides)
    config = RunConfig(**values)
    validate(config)
    return config


def validate(config):
    """Fail loudly, naming the field, on values that cannot work."""
    positive = ("batch_size", "iterations", "checkpoint_every", "sample_every", "nn_size")
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(config, name)}")
    choices = {"norm": NORMS, "warp_sampling": WARP_SAMPLINGS, "precision": PRECISIONS, "features": FEATURES,
               "reconstruction": RECONSTRUCTIONS, "heatmaps": HEATMAPS, "warp_gradient": WARP_GRADIENTS,
               "part_max": PART_MAXES, "vgg_mean": VGG_MEANS}
    for name, allowed in choices.items():
        check_choice(name, getattr(config, name), allowed)
    if not 0 < config.width <= 4:
        raise ValueError(f"width must be in (0, 4]. Received: width={config.width}")
    if not 0 < config.adam_epsilon < 1:
        raise ValueError(f"adam_epsilon must be in (0, 1). Received: adam_epsilon={config.adam_epsilon}")
    if not isinstance(config.loss_weights, dict):
        raise ValueError(f"loss_weights must map loss term names to weights. Received: {config.loss_weights!r}")
    for name, weight in config.loss_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"loss_weights[{name!r}] must be a finite number >= 0. Received: {weight!r}")


def read_config(path):
    """The RunConfig in a config.json file; a ValueError naming the file (and the JSON error's place) if malformed."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a dgan_tf run folder")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); it should be the JSON file train.py wrote") from None
    try:
        config = RunConfig.from_json(text)
        validate(config)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}. "
                         "It is written by train.py; fix it, or move the run folder away to start over") from None
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(f"{path} is not a valid run configuration ({type(error).__name__}: {error}). It is "
                         "written by train.py; fix it, or move the run folder away to start over") from None
    return config


def resume_config(saved, explicit):
    """On resume: the saved config with the resumable flags the user typed; refuse typed flags that conflict.

    explicit: {field: value} of the flags the user actually typed (never argparse defaults), so that
    `train.py --output-dir RUN` resumes any run with no other flag.
    """
    explicit = dict(explicit)
    if "loss_weights" in explicit:  # the typed weights, over the saved ones
        explicit["loss_weights"] = {**saved.loss_weights, **explicit["loss_weights"]}
    conflicts = [
        f"{name}: saved {getattr(saved, name)!r}, requested {value!r}"
        for name, value in explicit.items()
        if name not in RESUMABLE_CHANGES and getattr(saved, name) != value
    ]
    if conflicts:
        raise ValueError(
            "this run folder holds a run with a different configuration ("
            + "; ".join(conflicts) + "). Use another --run folder or drop those flags to resume.")
    config = saved.replace(**{name: value for name, value in explicit.items() if name in RESUMABLE_CHANGES})
    validate(config)
    return config
