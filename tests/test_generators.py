"""dgan_tf.load_generator, the public API: what `generate` accepts (shapes, dtypes, ranges), what it returns, and
the one name for each loader (Run.load_model gives the Keras model, dgan_tf.load_generator a generator)."""

import numpy as np
import pytest

from dgan_tf.inference.generators import GeneratorInputs
from tests.serving_helpers import STANDING_POSE, make_tiny_run

MODEL_SIZE = (128, 64)


def test_inputs_with_and_without_a_batch_axis(rng):
    image = rng.integers(0, 256, MODEL_SIZE + (3,), dtype=np.uint8)
    poses = np.stack([STANDING_POSE, STANDING_POSE + 1, STANDING_POSE - 1])
    single = GeneratorInputs.check(image, STANDING_POSE, STANDING_POSE.astype(np.int64), MODEL_SIZE)
    assert not single.batched and single.images.shape == (1,) + MODEL_SIZE + (3,) and single.images.dtype == np.uint8
    assert single.target_keypoints.dtype == np.float32 and np.array_equal(single.target_keypoints[0], STANDING_POSE)
    # One photo and its pose, three target poses: the unbatched inputs serve every item.
    several = GeneratorInputs.check(image, STANDING_POSE, poses, MODEL_SIZE)
    assert several.batched and several.images.shape[0] == several.source_keypoints.shape[0] == 3
    assert np.array_equal(several.target_keypoints, poses) and np.array_equal(several.images[2], image)
    assert GeneratorInputs.check(image.astype(np.int32), STANDING_POSE, poses, MODEL_SIZE).images.dtype == np.uint8
    floats = GeneratorInputs.check((image / 255.0 - 0.5) * 2.0, STANDING_POSE, poses, MODEL_SIZE)
    assert floats.is_float and floats.images.dtype == np.float32 and floats.images.max() <= 1.0


@pytest.mark.parametrize("images, source, target, message", [
    ("image", "pose", "pose[:, :1]", r"target_keypoints must have shape \(18, 2\) or \(batch, 18, 2\).*\(18, 1\)"),
    ("image[:, :32]", "pose", "pose", r"images must have shape \(128, 64, 3\) or \(batch, 128, 64, 3\).*32, 3\)"),
    ("image[None, ..., 0]", "pose", "pose", r"images must have shape .*\(1, 128, 64\)"),
    ("image.astype(np.float32)", "pose", "pose", r"uint8 RGB \(0-255\), or float in \[-1, 1\].*float32 from 2 to 2"),
    ("np.full(image.shape, 300, np.int32)", "pose", "pose", r"images must be uint8 .* int32 from 300 to 300"),
    ("image > 0", "pose", "pose", "images must be uint8 .* bool"),
    ("np.where(image > 0, np.nan, 0.0)", "pose", "pose", "float64 from nan"),
    ("np.stack([image] * 2)", "np.stack([pose] * 3)", "pose", "one batch size.*images 2, source_keypoints 3"),
    ("image[None][:0]", "pose", "pose", "empty batch"),
    ("image", "pose > 0", "pose", "source_keypoints must be numbers"),
    ("image", "pose * np.float64(1e300)", "pose", "source_keypoints must be finite float32 numbers"),
])
def test_what_generate_refuses_is_named(images, source, target, message):
    namespace = {"np": np, "image": np.full(MODEL_SIZE + (3,), 2, np.uint8), "pose": STANDING_POSE}
    with pytest.raises(ValueError, match=message):
        GeneratorInputs.check(eval(images, namespace), eval(source, namespace), eval(target, namespace), MODEL_SIZE)


def test_load_generator_from_the_package_runs_a_run_and_returns_what_it_was_given(tmp_path, rng):
    """dgan_tf.load_generator (the one public loader) on a run folder: uint8 in -> uint8 out, a single image or a
    batch, float in [-1, 1] -> the network's float output, which rounds to the uint8 output."""
    import dgan_tf
    from dgan_tf.inference.generators import KerasGenerator
    from dgan_tf.run import Run

    make_tiny_run(tmp_path / "run", MODEL_SIZE)
    assert not hasattr(Run, "load_generator")  # Run.load_model: the Keras model; one load_generator in dgan_tf
    generator = dgan_tf.load_generator(tmp_path / "run")
    assert isinstance(generator, KerasGenerator) and generator.image_size == MODEL_SIZE
    image = rng.integers(0, 256, MODEL_SIZE + (3,), dtype=np.uint8)
    targets = np.stack([STANDING_POSE, STANDING_POSE + 2])
    batch = generator.generate(image, STANDING_POSE, targets)
    assert batch.shape == (2,) + MODEL_SIZE + (3,) and batch.dtype == np.uint8
    single = generator.generate(image, STANDING_POSE, targets[1])
    assert single.shape == MODEL_SIZE + (3,) and np.array_equal(single, batch[1])
    floats = generator.generate((image / 255.0 - 0.5) * 2.0, STANDING_POSE, targets)
    assert floats.dtype == np.float32 and floats.shape == batch.shape and np.abs(floats).max() <= 1.0
    assert np.abs(np.rint((floats + 1) * 127.5) - batch).max() <= 1
    with pytest.raises(ValueError, match="images must be uint8 RGB"):
        generator.generate(image * 1.0, STANDING_POSE, targets)  # 0-255 floats
    with pytest.raises(FileNotFoundError, match="neither a training run"):
        dgan_tf.load_generator(tmp_path / "nothing")
