"""The authors' released weights as a dgan_tf run folder, which test.py, export.py and transfer.py take as they
take a trained run; with the discriminator too, a checkpoint that train.py resumes (fine-tuning).

The original's test.py loads a released generator with `generator.load_weights` (pose-gan test.py:118 at
8693ec4); the files are Keras 2.0.8 HDF5 (dgan_tf.models.original_weights reads them). The run gets the
original's settings: the dataset's and variant's defaults, which reproduce the original (config.json says so).
"""

import dataclasses
from pathlib import Path

RELEASED_UPDATES = 89_000  # the released generators' updates: saved before epoch 89 (pose-gan gan/train.py:100-105, submodule a4aa9a3)


@dataclasses.dataclass(frozen=True)
class Conversion:
    """What convert_original wrote."""

    run: object  # the dgan_tf.run.Run
    config: object  # its RunConfig
    generator_file: str  # the summary sentence of the generator file (parameters, what it matches)
    checkpoint: Path = None  # with the discriminator: the checkpoint train.py resumes
    step: int = None


def convert_original(generator_weights, dataset, variant, run, discriminator_weights=None, step=RELEASED_UPDATES,
                     data_root="data"):
    """Write `run` (a dgan_tf.run.Run, new) from the original's generator (and discriminator) weight files.

    Every file is checked (size, network, variant) and the run folder refused if it holds anything, before a
    model is built or a file written. Returns a Conversion.
    """
    from dgan_tf.build import build_gan, generator_of
    from dgan_tf.config import build_run_config
    from dgan_tf.loss_terms import build_generator_terms
    from dgan_tf.models.original_weights import (assign_original_weights, check_original_file,
                                                 describe_original_file, read_original_weights)

    config = build_run_config(dataset, variant, data_root=data_root)
    if discriminator_weights is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
        raise ValueError(f"step must be a non-negative integer. Received: step={step!r}")
    _check_empty(run)  # the output first, then the inputs: all before anything is built or written
    check_original_file(generator_weights, "generator", config.image_size, config.architecture)
    if discriminator_weights is not None:
        check_original_file(discriminator_weights, "discriminator", config.image_size)
    summary = str(describe_original_file(generator_weights))
    if discriminator_weights is None:
        generator = assign_original_weights(generator_of(config), read_original_weights(generator_weights),
                                            source=str(generator_weights))
        run.save_config(config)
        run.save_generator(generator)
        return Conversion(run, config, summary)
    # The training state: G, D and fresh Adam optimisers (the original's optimiser state was not released). The
    # loss terms do not enter a checkpoint: the adversarial one alone spares building VGG19 here.
    terms = build_generator_terms(config.replace(loss_weights={"g_adversarial": 1.0}))
    gan = build_gan(config, terms=terms)
    assign_original_weights(gan.generator, read_original_weights(generator_weights), source=str(generator_weights))
    assign_original_weights(gan.discriminator, read_original_weights(discriminator_weights),
                            source=str(discriminator_weights))
    run.save_config(config.replace(iterations=max(config.iterations, step)))
    checkpoint = run.save_checkpoint(gan, step)
    run.save_generator(gan.generator)
    return Conversion(run, config, summary, checkpoint, step)


def _check_empty(run):
    """A conversion writes a new run: refuse a folder that holds files (never overwrite a trained run), and any
    path the run could not be written to (dgan_tf.outputs' rules, through Run.check_outputs)."""
    folder = Path(run.folder)
    run.check_outputs()
    if folder.is_dir() and any(folder.iterdir()):
        raise ValueError(f"--run {folder} is not empty ({', '.join(sorted(p.name for p in folder.iterdir())[:5])}); "
                         "a conversion writes a new run: give a new folder, or move this one away")
