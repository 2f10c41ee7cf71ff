"""Atomic training checkpoints: G, D, both optimisers and the iteration, in one .npz per save.

A checkpoint is written to a temporary file, flushed, then renamed; `latest.json` is replaced the
same way afterwards. A run killed at any moment resumes from the last complete checkpoint.
"""

import json
import re
from pathlib import Path

import numpy as np

from dgan_tf.files import atomic_open, atomic_write_text

CHECKPOINT_DIR = "checkpoints"
LATEST_FILE = "latest.json"
_NAME = re.compile(r"^ckpt-(\d{8})\.npz$")


def _variable_groups(gan):
    return {
        "generator": gan.generator.weights,
        "discriminator": gan.discriminator.weights,
        "generator_optimizer": gan.generator_optimizer.variables,
        "discriminator_optimizer": gan.discriminator_optimizer.variables,
    }


def save_checkpoint(output_dir, gan, step, keep=3):
    """Save the whole training state at iteration `step`; keep the newest `keep` checkpoints."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {"step": np.array(step, dtype=np.int64)}
    for group, variables in _variable_groups(gan).items():
        for i, variable in enumerate(variables):
            arrays[f"{group}/{i:04d}"] = np.asarray(keras_value(variable))
    path = folder / f"ckpt-{step:08d}.npz"
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    atomic_write_text(folder / LATEST_FILE, json.dumps({"step": step, "file": path.name}))
    for old in list_checkpoints(output_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def keras_value(variable):
    from keras import ops

    return ops.convert_to_numpy(variable.value)


def list_checkpoints(output_dir):
    """Complete checkpoint files, oldest first (temporary files are never listed)."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if _NAME.match(p.name))


def latest_checkpoint(output_dir):
    """Path of the newest checkpoint that can be read, or None."""
    folder = Path(output_dir) / CHECKPOINT_DIR
    candidates = list_checkpoints(output_dir)
    try:
        named = folder / json.loads((folder / LATEST_FILE).read_text())["file"]
        if named in candidates:
            candidates.remove(named)
            candidates.append(named)
    except (OSError, ValueError, KeyError):
        pass
    for path in reversed(candidates):
        try:
            with np.load(path) as data:
                int(data["step"])
            return path
        except Exception:
            continue
    return None


def restore_checkpoint(path, gan):
    """Load a checkpoint into a built GAN (optimisers built); returns its iteration."""
    with np.load(path) as data:
        for group, variables in _variable_groups(gan).items():
            stored = sorted(k for k in data.files if k.startswith(group + "/"))
            if len(stored) != len(variables):
                raise ValueError(
                    f"{path}: {group} has {len(stored)} arrays, the model has {len(variables)} variables; "
                    "the checkpoint was written by a different configuration")
            for key, variable in zip(stored, variables):
                value = data[key]
                if tuple(value.shape) != tuple(variable.shape):
                    raise ValueError(f"{path}: {key} has shape {value.shape}, the model expects {variable.shape}")
                variable.assign(value)
        return int(data["step"])
