"""The run folder: `Run` (layout, config.json, generator.keras, samples, logs, the lock) and its checkpoints' format."""

from dgan_tf.run.folder import GeneratorFileError, Run, StartRefused, check_generator
from dgan_tf.run.lock import RunInUse

__all__ = ["GeneratorFileError", "Run", "RunInUse", "StartRefused", "check_generator"]
