"""Training checkpoints that can be trusted: G, D, both optimisers and the iteration, in one .npz per save.

Format (2): every array is keyed `GROUP/PATH` (GROUP: generator, discriminator, generator_optimizer,
discriminator_optimizer; PATH: the Keras variable path, the optimiser's own auto-generated name replaced by
`optimizer`), plus `step` and `format`. Writing: a temporary file, fsync, rename, then `latest.json`
(a hint for people and tools; restoring never trusts it). A run killed at any moment resumes from the newest
checkpoint that verifies completely: every array readable, the same names and shapes as the model's;
nothing is assigned before all of that holds. Checkpoints that do not verify are reported by name and moved
to `checkpoints/corrupt/` (never deleted); when checkpoint files exist but none verifies, training refuses
to start from scratch. Checkpoints of dgan_tf 0.1 (arrays stored by position) are refused.
"""

import contextlib
import json
import re
import sys
import zipfile
from pathlib import Path

import numpy as np

from dgan_tf.files import atomic_open, atomic_write_text

CORRUPT_DIR = "corrupt"
LATEST_FILE = "latest.json"
FORMAT = 2
_NAME = re.compile(r"^ckpt-(\d{8,})\.npz$")
_LEGACY_KEY = re.compile(r"^[a-z_]+/\d{4}$")
_PARTIAL = re.compile(r"^\.(ckpt-\d{8,}\.npz|latest\.json)\..+\.tmp$")  # atomic_open's temporary files
START_OVER = "move the checkpoints folder away (or use another --run folder) to start over"


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and why."""


class NoUsableCheckpoint(CheckpointError):
    """Checkpoint files exist but none verifies: training refuses to start from scratch over them."""


def print_warning(message):
    print(f"warning: {message}", file=sys.stderr, flush=True)


# ---- keys


def _optimizer_roles(optimizer):
    """{auto-generated optimiser name: stable role}: Keras numbers optimiser names per process (adam, adam_1...)."""
    roles = {optimizer.name: "optimizer"}
    inner = getattr(optimizer, "inner_optimizer", None)  # LossScaleOptimizer
    if inner is not None:
        roles[inner.name] = "inner_optimizer"
    return roles


def _keyed(group, variables, roles=None):
    """[(key, variable)] for one group, keys `group/path`; refuses duplicate paths (they could not be told apart)."""
    keyed, seen = [], set()
    for variable in variables:
        path = variable.path
        head, _, rest = path.partition("/")
        if roles and head in roles and rest:
            path = f"{roles[head]}/{rest}"
        key = f"{group}/{path}"
        if key in seen:
            raise ValueError(f"two {group} variables share the path {path!r}: checkpoints key arrays by variable "
                             "path, so every layer needs a unique name")
        seen.add(key)
        keyed.append((key, variable))
    return keyed


def keyed_variables(gan):
    """[(key, variable)] of the whole training state, in a fixed order."""
    return (_keyed("generator", gan.generator.weights)
            + _keyed("discriminator", gan.discriminator.weights)
            + _keyed("generator_optimizer", gan.generator_optimizer.variables,
                     _optimizer_roles(gan.generator_optimizer))
            + _keyed("discriminator_optimizer", gan.discriminator_optimizer.variables,
                     _optimizer_roles(gan.discriminator_optimizer)))


def variable_value(variable):
    from keras import ops

    return ops.convert_to_numpy(variable.value)


# ---- listing


def checkpoint_files(folder):
    """[(step, path)] of the checkpoint files in `folder` by step, oldest first (temporary files are never listed)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name)) and p.is_file()]
    return sorted(found)


def list_checkpoints(folder):
    """Checkpoint file paths by step, oldest first."""
    return [path for _, path in checkpoint_files(folder)]


def remove_partial(folder):
    """Delete the temporary checkpoint and latest.json files that interrupted writes left in `folder`."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            if entry.is_file() and _PARTIAL.match(entry.name):
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


# ---- reading and verifying


def write_arrays(file, arrays):
    """Write {key: array} into an open binary file as an uncompressed .npz."""
    np.savez(file, **arrays)


def read_checkpoint(path):
    """(step, {key: array}) with every array read and CRC-checked; CheckpointError naming the file otherwise."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile, zipfile.LargeZipFile) as error:
        reason = str(error) or type(error).__name__
        raise CheckpointError(f"{path} cannot be read ({reason}): truncated or damaged") from None
    except Exception as error:  # zlib and struct errors from damaged zip entries
        raise CheckpointError(f"{path} cannot be read ({type(error).__name__}: {error}): truncated or damaged") from None
    if "step" not in arrays or arrays["step"].shape != ():
        raise CheckpointError(f"{path} holds no iteration number: not a dgan_tf checkpoint")
    step = int(arrays.pop("step"))
    if "format" not in arrays:
        if arrays and all(_LEGACY_KEY.match(key) for key in arrays):
            raise CheckpointError(
                f"{path} was written by dgan_tf 0.1, which stored arrays by position: they cannot be "
                "checked against the model's variables, so this version does not load them (dgan_tf is 0.x: "
                "checkpoint formats may change between versions); finish that run with the version that wrote it")
        raise CheckpointError(f"{path} has no format number: not a dgan_tf checkpoint")
    version = int(arrays.pop("format"))
    if version != FORMAT:
        raise CheckpointError(f"{path} has checkpoint format {version}; this dgan_tf reads format {FORMAT}")
    match = _NAME.match(path.name)
    if match and int(match.group(1)) != step:
        raise CheckpointError(f"{path} holds iteration {step}, not the one in its name")
    return step, arrays


def _describe(keys, limit=3):
    keys = sorted(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def match_arrays(path, arrays, gan):
    """[(variable, array)] pairing each model variable with its array by key; CheckpointError on any difference."""
    keyed = keyed_variables(gan)
    expected = {key for key, _ in keyed}
    missing, extra = expected - set(arrays), set(arrays) - expected
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} variable(s) of the model are not in it ({_describe(missing)})")
        if extra:
            parts.append(f"it holds {len(extra)} array(s) the model does not have ({_describe(extra)})")
        raise CheckpointError(f"{path} does not match the model: " + "; ".join(parts)
                              + ". It was written by a different configuration or version")
    pairs = []
    for key, variable in keyed:
        value = arrays[key]
        if tuple(value.shape) != tuple(variable.shape):
            raise CheckpointError(f"{path}: {key} has shape {tuple(value.shape)}, the model expects "
                                  f"{tuple(variable.shape)}")
        pairs.append((variable, value))
    return pairs


def verify_checkpoint(path, gan):
    """(step, [(variable, array)]) when `path` verifies completely against `gan`; else CheckpointError."""
    step, arrays = read_checkpoint(path)
    return step, match_arrays(path, arrays, gan)


def restore_checkpoint(path, gan):
    """Load one checkpoint into a built GAN (optimisers built) after verifying all of it; returns its iteration."""
    step, pairs = verify_checkpoint(path, gan)
    for variable, value in pairs:
        variable.assign(value)
    return step


def _move_aside(path, warn):
    target_dir = path.parent / CORRUPT_DIR
    target_dir.mkdir(exist_ok=True)
    target = target_dir / path.name
    number = 1
    while target.exists():
        target = target_dir / f"{path.name}.{number}"
        number += 1
    path.replace(target)
    warn(f"moved {path.name} to {target} (kept for inspection; delete it when you no longer need it)")
    return target


def restore_latest(folder, gan, warn=print_warning):
    """Restore the newest checkpoint of `folder` that verifies; returns (step, path), or None when there is none.

    Each newer checkpoint skipped is reported through `warn` with its reason and moved to checkpoints/corrupt/.
    Raises NoUsableCheckpoint, listing every file and reason, when checkpoint files exist but none verifies.
    """
    folder = Path(folder)
    files = checkpoint_files(folder)
    if not files:
        return None
    skipped = []
    for _, path in reversed(files):
        try:
            step, pairs = verify_checkpoint(path, gan)
        except CheckpointError as error:
            skipped.append((path, str(error)))
            continue
        for bad, reason in skipped:
            warn(f"skipping checkpoint {bad.name}: {reason}")
            _move_aside(bad, warn)
        for variable, value in pairs:
            variable.assign(value)
        _write_latest(path.parent, step, path)
        return step, path
    listing = "\n".join(f"  {reason}" for _, reason in skipped)
    raise NoUsableCheckpoint(
        f"none of the {len(files)} checkpoint file(s) in {folder} can be restored:\n{listing}\n"
        f"Training does not start from scratch over them: {START_OVER}, e.g. mv {folder} {folder}.unusable")


def is_readable(path):
    """True when every array of the checkpoint can be read (CRC-checked) and it names its iteration."""
    try:
        read_checkpoint(path)
    except CheckpointError:
        return False
    return True


def latest_checkpoint(folder):
    """Path of the newest readable checkpoint in `folder` by step, or None (latest.json is not trusted)."""
    for _, path in reversed(checkpoint_files(folder)):
        if is_readable(path):
            return path
    return None


# ---- writing


def _write_latest(folder, step, path):
    latest = folder / LATEST_FILE
    text = json.dumps({"step": int(step), "file": path.name})
    with contextlib.suppress(OSError):
        if latest.read_text() == text:
            return
    atomic_write_text(latest, text)


def checkpoint_arrays(gan, step):
    arrays = {"step": np.array(step, dtype=np.int64), "format": np.array(FORMAT, dtype=np.int64)}
    for key, variable in keyed_variables(gan):
        arrays[key] = np.asarray(variable_value(variable))
    return arrays


def save_checkpoint(folder, gan, step, keep=3, known_good=None, warn=print_warning):
    """Save the whole training state at iteration `step`; keep the newest `keep` readable checkpoints.

    The new file is renamed into place before `latest.json` names it, so latest.json never points to a missing
    file. known_good: a set of file names already known to be readable (the caller's cache; updated here).
    """
    folder = Path(folder)
    arrays = checkpoint_arrays(gan, step)
    path = folder / f"ckpt-{step:08d}.npz"
    with atomic_open(path) as f:
        write_arrays(f, arrays)
    _write_latest(folder, step, path)
    rotate(folder, path, keep=keep, known_good=known_good, warn=warn)
    return path


def rotate(folder, newest, keep=3, known_good=None, warn=print_warning):
    """Keep `newest` and the keep - 1 newest other readable checkpoints by step; delete older readable ones.

    Unreadable files are never deleted: they are moved to checkpoints/corrupt/ with a warning.
    """
    known_good = set() if known_good is None else known_good
    known_good.add(newest.name)
    kept = 1
    for _, path in reversed(checkpoint_files(folder)):
        if path == newest:
            continue
        if path.name not in known_good:
            if not is_readable(path):
                warn(f"checkpoint {path} cannot be read")
                _move_aside(path, warn)
                continue
            known_good.add(path.name)
        if kept < keep:
            kept += 1
        else:
            path.unlink(missing_ok=True)
            known_good.discard(path.name)
