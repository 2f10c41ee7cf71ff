"""The run folder: `Run` (layout, config.json, generator.keras, samples, logs) and its checkpoints' format."""

from dgan_tf.run.folder import GeneratorFileError, Run, generator_image_size

__all__ = ["GeneratorFileError", "Run", "generator_image_size"]
