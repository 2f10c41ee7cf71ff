"""The run folder: `Run` (layout, config.json, generator.keras, samples, logs) and its checkpoints' format."""

from dgan_tf.run.folder import GeneratorFileError, Run, check_generator

__all__ = ["GeneratorFileError", "Run", "check_generator"]
