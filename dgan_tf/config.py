"""One frozen, JSON-serialisable config per training run: dataset defaults, then the variant, then overrides.

Saved as `config.json` next to the checkpoints, so that resume, test and export reload it instead of
asking the user to repeat the training flags.
"""

import dataclasses
import json
from pathlib import Path

from dgan_tf.files import atomic_write_text

CONFIG_FILE = "config.json"

# The original's schedule (SPEC §6): 90 "epochs" of 1000 iterations, batch 4 (2 for DeepFashion full).
ORIGINAL_ITERATIONS = 90_000
# The embedded default is sized for the README's main command: about 10 minutes on a 2-core CPU,
# with a half-width network (1.31 s per iteration at 128x64 against 5.07 s at width 1).
SYNTHETIC_ITERATIONS = 400
SYNTHETIC_WIDTH = 0.5


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run; models get explicit arguments derived from it."""

    dataset: str
    image_size: tuple
    variant: str
    architecture: str
    reconstruction: str  # "l1" | "nn"
    features: str  # "pixels" | "vgg19_block2_conv1" | "vgg19_block1_conv2"
    reconstruction_weight: float
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
    caffe_mean_quirk: bool = False
    data_root: str = "data"

    def to_json(self):
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text):
        values = json.loads(text)
        values["image_size"] = tuple(values["image_size"])
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"config.json has unknown fields {unknown}; was it written by a newer dgan_tf?")
        return cls(**values)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


# Fields that may differ between a saved run and the command that resumes it.
RESUMABLE_CHANGES = ("iterations", "checkpoint_every", "sample_every", "data_root")


def build_run_config(dataset="synthetic", variant="dsc", image_size=None, **overrides):
    """Dataset defaults -> variant -> overrides (None values are ignored)."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.variants import get_variant

    data = get_dataset(dataset, data_root=overrides.get("data_root") or "data", image_size=image_size)
    chosen = get_variant(variant)
    features = overrides.pop("features", None) or chosen.features
    batch_size = 2 if (dataset == "fashion" and variant == "full") else 4
    synthetic = dataset == "synthetic"
    values = dict(
        dataset=dataset,
        image_size=tuple(data.image_size),
        variant=chosen.name,
        architecture=chosen.architecture,
        reconstruction=chosen.reconstruction,
        features=features,
        reconstruction_weight=float(chosen.weight),
        nn_size=int(data.nn_loss_size),
        batch_size=batch_size,
        iterations=SYNTHETIC_ITERATIONS if synthetic else ORIGINAL_ITERATIONS,
        checkpoint_every=100 if synthetic else 1000,
        sample_every=50 if synthetic else 1000,
        width=SYNTHETIC_WIDTH if synthetic else 1.0,
    )
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    config = RunConfig(**values)
    validate(config)
    return config


def validate(config):
    """Fail loudly, naming the field, on values that cannot work."""
    positive = ("batch_size", "iterations", "checkpoint_every", "sample_every", "nn_size")
    for name in positive:
        if getattr(config, name) < 1:
            raise ValueError(f"{name} must be >= 1. Received: {name}={getattr(config, name)}")
    choices = {
        "norm": ("scalar", "instance"),
        "warp_sampling": ("nearest", "bilinear"),
        "precision": ("float32", "mixed_bfloat16", "mixed_float16"),
        "features": ("pixels", "vgg19_block2_conv1", "vgg19_block1_conv2"),
        "reconstruction": ("l1", "nn"),
    }
    for name, allowed in choices.items():
        if getattr(config, name) not in allowed:
            raise ValueError(f"{name} must be one of {allowed}. Received: {name}={getattr(config, name)!r}")
    if not 0 < config.width <= 4:
        raise ValueError(f"width must be in (0, 4]. Received: width={config.width}")
    if not config.reconstruction_weight >= 0:
        raise ValueError(f"reconstruction_weight must be >= 0. Received: {config.reconstruction_weight}")


def save_config(config, output_dir):
    """Write config.json atomically."""
    atomic_write_text(Path(output_dir) / CONFIG_FILE, config.to_json())


def load_config(output_dir):
    path = Path(output_dir) / CONFIG_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a dgan_tf run folder")
    return RunConfig.from_json(path.read_text())


def reconcile_with_saved(saved, requested, explicit):
    """On resume: keep the saved config, apply only resumable changes; refuse conflicting explicit flags."""
    conflicts = [
        f"{name}: saved {getattr(saved, name)!r}, requested {getattr(requested, name)!r}"
        for name in explicit
        if name not in RESUMABLE_CHANGES and getattr(saved, name) != getattr(requested, name)
    ]
    if conflicts:
        raise ValueError(
            "this output folder holds a run with a different configuration ("
            + "; ".join(conflicts) + "). Use another --output-dir or drop those flags to resume.")
    return saved.replace(**{name: getattr(requested, name) for name in explicit if name in RESUMABLE_CHANGES})
