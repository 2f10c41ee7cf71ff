"""A training run's folder, in one room: its layout, config.json, checkpoints, generator.keras, samples and logs.

train.py writes a run; test.py, export.py, transfer.py, the notebooks and the benchmarks read it through
`Run.open(path)` and its checked loaders (`load_config`, `load_model`), so every tool accepts the same
things (a run folder, or the `.keras` file in one) and names the same file when something is wrong.

    RUN/config.json             the RunConfig (dataset -> variant -> flags), written atomically
    RUN/checkpoints/ckpt-N.npz  G, D, both optimisers and the iteration (dgan_tf.run.checkpoints)
    RUN/generator.keras         the final generator (Keras 3 format; `import dgan_tf` registers its layers)
    RUN/samples/step-N.png      sample grids; samples/latest.png the newest
    RUN/logs/                   TensorBoard event files
    RUN/test/                   what test.py writes by default
    RUN/train.lock              while a trainer runs: its PID and host (dgan_tf.run.lock)

A trainer checks the layout before any work (`check_outputs`), takes the lock (`lock`), and refuses a start that
would replace a finished generator or go back in iterations (`check_start`), writing nothing.
"""

import dataclasses
import os
import zipfile
from pathlib import Path

from dgan_tf.files import remove_partial_files, write_error
from dgan_tf.images import ImageSize
from dgan_tf.outputs import check_output_folder
from dgan_tf.run import checkpoints
from dgan_tf.run.lock import RunLock

CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.keras"
CHECKPOINT_DIR = "checkpoints"
SAMPLES_DIR = "samples"
LOGS_DIR = "logs"
TEST_DIR = "test"
LATEST_SAMPLE = "latest.png"
_GENERATOR_TMP = ".generator.tmp.keras"  # Keras saves only to names ending in .keras
REWRITE_GENERATOR = ("write it again from the run's checkpoints: python scripts/train.py --run RUN resumes the run "
                     "and rewrites it")


class GeneratorFileError(ValueError):
    """A generator file that cannot be used: damaged, not a Keras file, not a dgan_tf generator, another run's."""


class StartRefused(ValueError):
    """A training start that would lose work (a finished generator replaced) or go back in iterations."""


@dataclasses.dataclass(frozen=True)
class Run:
    """The folder of one training run and every path in it; `generator_file` may name another `.keras` file."""

    folder: Path
    generator_file: str = GENERATOR_FILE

    def __post_init__(self):
        object.__setattr__(self, "folder", Path(self.folder))

    @classmethod
    def open(cls, path):
        """An existing run to read: a run folder, or a `.keras` file (its folder is the run). FileNotFoundError else."""
        path = Path(path)
        if path.suffix == ".keras" and not path.is_dir():
            if not path.is_file():
                raise FileNotFoundError(f"{path} not found: give a training run folder (python scripts/train.py "
                                        "writes one) or the .keras file of one")
            return cls(path.parent, path.name)
        if not path.is_dir():
            what = "is a file, not a run folder" if path.exists() else "not found"
            raise FileNotFoundError(f"{path} {what}: give a training run folder (python scripts/train.py writes one, "
                                    "e.g. runs/synthetic-dsc) or the .keras file of one")
        return cls(path)

    # ---- layout
    @property
    def config_path(self):
        return self.folder / CONFIG_FILE

    @property
    def generator_path(self):
        return self.folder / self.generator_file

    @property
    def checkpoint_dir(self):
        return self.folder / CHECKPOINT_DIR

    @property
    def samples_dir(self):
        return self.folder / SAMPLES_DIR

    @property
    def logs_dir(self):
        return self.folder / LOGS_DIR

    @property
    def test_dir(self):
        return self.folder / TEST_DIR

    def sample_path(self, step):
        return self.samples_dir / f"step-{step:08d}.png"

    @property
    def latest_sample_path(self):
        return self.samples_dir / LATEST_SAMPLE

    def checkpoint_path(self, step):
        return self.checkpoint_dir / f"ckpt-{step:08d}.npz"

    def has_config(self):
        return self.config_path.is_file()

    def has_generator(self):
        return self.generator_path.is_file()

    # ---- starting a trainer
    def check_outputs(self, what="--run"):
        """Refuse, before any work, a run path a trainer could not write: a file there or above it, a file where
        checkpoints/, samples/ or logs/ go, a folder where config.json or generator.keras go, a read-only folder."""
        check_output_folder(self.folder, what, files=(CONFIG_FILE, GENERATOR_FILE),
                            folders=(CHECKPOINT_DIR, SAMPLES_DIR, LOGS_DIR))

    def lock(self):
        """The run's lock (a context manager): one trainer per folder; RunInUse names the holder."""
        return RunLock(self.folder)

    def check_start(self, step, iterations):
        """Refuse, before anything is written, a start at `step` (None: no checkpoint) that would replace a finished
        generator.keras by training again from 0, or that asks for fewer `iterations` than the run has done."""
        if step is None and self.has_generator():
            raise StartRefused(
                f"{self.generator_path} holds a finished run's generator, but {self.checkpoint_dir} holds no "
                "checkpoint to resume from: training would start again at iteration 0 and replace it. To train this "
                f"run further, put its checkpoints back in {self.checkpoint_dir}; to start over, move "
                f"{self.generator_path} away (or use another --run folder)")
        if step is not None and step > iterations:
            raise StartRefused(
                f"the run in {self.folder} is already at iteration {step}, past the {iterations} iterations asked "
                f"for; nothing was trained or written. Give --iterations above {step} to train further (a run does "
                "not go back: its checkpoints hold the later iterations)")

    # ---- config.json
    def load_config(self):
        """The saved RunConfig, checked; FileNotFoundError when absent, ValueError naming the file when malformed."""
        from dgan_tf.config import read_config

        return read_config(self.config_path)

    def save_config(self, config):
        """Write config.json atomically (the folder is created)."""
        from dgan_tf.files import atomic_write_text

        atomic_write_text(self.config_path, config.to_json())

    # ---- generator.keras
    def load_model(self, config=None):
        """The generator in generator.keras (or the `.keras` file opened), checked: a readable Keras file, a dgan_tf
        generator, and the image size of `config` (default: config.json when present). GeneratorFileError names
        the file otherwise; FileNotFoundError when there is none."""
        import keras

        import dgan_tf  # noqa: F401  (registers the custom layers)

        path = self.generator_path
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: train first (python scripts/train.py --run {self.folder}) or "
                                    "give a run folder that holds generator.keras")
        _check_zip(path)
        model_config = _model_config(path)  # refuse a foreign class before Keras deserialises anything
        if config is None and self.has_config():
            config = self.load_config()
        declared = _declared_image_size(model_config)  # refuse another run's model before the slow load
        if config is not None and declared is not None and declared != tuple(config.image_size):
            raise self._size_mismatch(path, declared, config)
        try:
            generator = keras.saving.load_model(path, compile=False)
        except Exception as error:  # Keras raises KeyError, TypeError, ValueError... for malformed files
            reason = str(error).splitlines()[0] if str(error) else ""
            raise _unreadable(path, f"{type(error).__name__}: {reason[:300]}".rstrip(": ")) from None
        image_size = check_generator(generator, path)
        if config is not None and image_size != tuple(config.image_size):
            raise self._size_mismatch(path, image_size, config)
        return generator

    def _size_mismatch(self, path, image_size, config):
        return GeneratorFileError(
            f"{path} takes images of {image_size[0]}x{image_size[1]}, but the run's {self.config_path} says "
            f"{config.image_size[0]}x{config.image_size[1]}: the model file belongs to another run; give the matching "
            "run folder")

    def save_generator(self, generator):
        """Write generator.keras atomically (a temporary sibling, then a rename); WriteError names the file."""
        path, tmp = self.generator_path, self.folder / _GENERATOR_TMP
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            generator.save(tmp)
            os.replace(tmp, path)
        except OSError as error:
            tmp.unlink(missing_ok=True)
            raise write_error(error, path) from None
        return path

    # ---- checkpoints (the format is dgan_tf.run.checkpoints)
    def checkpoint_files(self):
        """[(step, path)] of the checkpoint files by step, oldest first."""
        return checkpoints.checkpoint_files(self.checkpoint_dir)

    def latest_checkpoint(self):
        """The newest readable checkpoint, or None."""
        return checkpoints.latest_checkpoint(self.checkpoint_dir)

    def save_checkpoint(self, gan, step, keep=3, known_good=None, warn=checkpoints.print_warning):
        return checkpoints.save_checkpoint(self.checkpoint_dir, gan, step, keep=keep, known_good=known_good, warn=warn)

    def restore_step(self, gan, step):
        """Restore the checkpoint of iteration `step` (chosen by another worker) after verifying all of it."""
        return checkpoints.restore_checkpoint(self.checkpoint_path(step), gan)

    def restore_latest(self, gan, warn=checkpoints.print_warning):
        """(step, path) of the newest checkpoint that verifies, restored into `gan`; None when there is none."""
        return checkpoints.restore_latest(self.checkpoint_dir, gan, warn=warn)

    # ---- interrupted writes
    def remove_partial_files(self):
        """Delete what interrupted writes left (temporary checkpoint, latest.json, config, sample, model files)."""
        removed = checkpoints.remove_partial(self.checkpoint_dir)
        for folder in (self.folder, self.samples_dir):
            removed += remove_partial_files(folder)
        stale = self.folder / _GENERATOR_TMP
        if stale.is_file():
            stale.unlink()
            removed.append(stale)
        return removed


def _unreadable(path, reason):
    return GeneratorFileError(f"{path} is not a readable Keras model file ({reason}); {REWRITE_GENERATOR}")


def _check_zip(path):
    """A `.keras` file is a zip archive: read every entry (CRC-checked) before Keras sees it."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise _unreadable(path, f"not a complete zip archive, {path.stat().st_size} bytes: truncated or damaged; "
                                f"{error}") from None
    except Exception as error:  # zlib and struct errors from damaged entries
        raise _unreadable(path, f"{type(error).__name__}: {error}") from None
    if damaged is not None:
        raise _unreadable(path, f"its entry {damaged} is damaged")


def _foreign_class(model):
    """'module.Class' of the first object in a .keras config that is neither Keras's nor a registered dgan_tf
    layer (a Python lambda, a function or class of any other package), else None."""
    from dgan_tf.layers.registration import is_dgan_tf_name

    pending = [model]
    while pending:  # a loop, not recursion: a crafted file may nest deeper than Python's stack
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(reversed(node))
        elif isinstance(node, dict):
            if "class_name" in node:
                module, name, registered = node.get("module"), str(node.get("class_name")), node.get("registered_name")
                keras = isinstance(module, str) and (module == "keras" or module.startswith("keras."))
                ours = isinstance(module, str) and module.startswith("dgan_tf.") and is_dgan_tf_name(registered)
                builtin = module is None  # Keras looks a bare name up among its own objects (__keras_tensor__...)
                foreign = isinstance(registered, str) and ">" in registered and not is_dgan_tf_name(registered)
                if name == "__lambda__" or foreign or not (keras or ours or builtin):
                    return f"{module}.{name}" if module else name
            pending.extend(reversed(list(node.values())))
    return None


def _model_config(path):
    """The config.json inside a .keras file, parsed and checked to name only Keras and dgan_tf classes."""
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            text = archive.read("config.json")
    except KeyError:
        raise _unreadable(path, "its archive holds no config.json: not a Keras 3 model file") from None
    try:
        model = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise _unreadable(path, f"its entry config.json is not valid JSON: {error or 'nested too deep'}") from None
    foreign = _foreign_class(model)
    if foreign:
        raise GeneratorFileError(
            f"{path} was refused: its config.json names {foreign}, which is neither a Keras class nor a dgan_tf "
            "layer; nothing in the file was loaded or run. A dgan_tf generator holds Keras and dgan_tf layers only")
    return model


def _declared_image_size(model):
    """(H, W) of the `source_image` input declared in a .keras file's config, or None when it says otherwise."""
    try:
        for layer in model["config"]["layers"]:
            if layer["class_name"] == "InputLayer" and layer["config"]["name"] == "source_image":
                return tuple(int(v) for v in layer["config"]["batch_shape"][1:3])
    except (KeyError, TypeError, ValueError):
        return None
    return None


def check_generator(model, path="the model"):
    """The ImageSize of a dgan_tf generator, [image (B, H, W, 3), keypoints (B, 18, 2) x 2] -> (B, H, W, 3);
    GeneratorFileError naming `path` for any other model."""
    from dgan_tf.geometry.keypoints import NUM_JOINTS

    def shape(tensor):
        return tuple(getattr(tensor, "shape", ()) or ())

    inputs, outputs = list(getattr(model, "inputs", None) or []), list(getattr(model, "outputs", None) or [])
    expected = len(inputs) == 3 and len(outputs) == 1
    if expected:
        image, source, target = (shape(t) for t in inputs)
        size = image[1:3]
        expected = (len(image) == 4 and image[3] == 3 and None not in size
                    and source[1:] == (NUM_JOINTS, 2) == target[1:] and shape(outputs[0])[1:] == size + (3,))
    if not expected:
        received = ", ".join(str(shape(t)) for t in inputs) + " -> " + ", ".join(str(shape(t)) for t in outputs)
        raise GeneratorFileError(
            f"{path} is not a dgan_tf generator: it takes {received or 'no inputs'}; a generator takes "
            f"[source image (B, H, W, 3), source keypoints (B, {NUM_JOINTS}, 2), target keypoints "
            f"(B, {NUM_JOINTS}, 2)] and returns (B, H, W, 3)")
    return ImageSize.of(tuple(int(v) for v in size))
