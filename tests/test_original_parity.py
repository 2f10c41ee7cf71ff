"""The proof of the converter: the original's networks (re-typed for tf_keras) and dgan_tf's, with the same weights
through a Keras 2 HDF5 file, give the same images and patch probabilities on real pose pairs.

The original side is tests/original_pose_gan: make_generator / make_discriminator with random (seeded) weights,
fed the heatmaps, part masks and affines its numpy code computed per pair; its weights go through tf_keras's
legacy HDF5 `save_weights` into dgan_tf's load_original_generator / load_original_discriminator, which take
keypoints. Inference mode (dropout off), the same random source images.
"""

import numpy as np
import pytest

from dgan_tf.data.annotations import read_annotations, read_pairs
from dgan_tf.models.original_weights import load_original_discriminator, load_original_generator

tf_keras = pytest.importorskip("tf_keras", reason="the original's networks are re-typed for tf_keras (pip install tf_keras)")

from original_pose_gan import inputs as original_inputs  # noqa: E402
from original_pose_gan.model import make_discriminator, make_generator  # noqa: E402

# Max abs difference, float32. Measured: the discriminators 0; the generators up to 5.3e-6, all of it from
# padding="same" on their stride-2 (transposed) convolutions where the original pads / crops explicitly (TF picks
# other kernels; with the explicit form the difference is 0). See dgan_tf/models/generator.py's _encoder.
TOLERANCE = 1e-4
DATASETS = {  # annotation file, pair file, image size, pairs compared
    "market": ("market-annotation-test.csv", "market-pairs-test.csv", (128, 64), 3),
    "fashion": ("fasion-annotation-test.csv", "fashion-pairs-test.csv", (256, 256), 2),
}


def _pairs(folder, dataset, seed=0):
    """Source image (random), source and target keypoints (B, 18, 2) int of real test pairs."""
    annotation_file, pair_file, size, count = DATASETS[dataset]
    table = read_annotations(folder / annotation_file, image_size=size)
    pairs = read_pairs(folder / pair_file, known_names=table.names)
    rng = np.random.default_rng(seed)
    chosen = pairs.iloc[np.sort(rng.choice(len(pairs), count, replace=False))]
    source = np.stack([table.get(name) for name in chosen["from"]]).astype(np.int64)
    target = np.stack([table.get(name) for name in chosen["to"]]).astype(np.int64)
    images = rng.uniform(-1, 1, size=(count,) + size + (3,)).astype(np.float32)
    return images, source, target


def _randomise(model, seed):
    """Seeded Glorot kernels (tf_keras's init) and random biases, gammas and betas, so that each array counts."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        names = [w.name.rsplit("/", 1)[-1].split(":")[0] for w in layer.weights]
        low_high = {"bias": (-0.1, 0.1), "gamma": (0.5, 1.5), "beta": (-0.5, 0.5)}
        layer.set_weights([rng.uniform(*low_high[n], size=w.shape).astype(np.float32) if n in low_high else w
                           for n, w in zip(names, weights)])


def _original_batch(images, source, target, size, warp):
    """The original's generator inputs for a batch, pair by pair as its data loader built them."""
    per_pair = [original_inputs.generator_inputs(i, s, t, size, warp) for i, s, t in zip(images, source, target)]
    return [np.concatenate(column) for column in zip(*per_pair)]


@pytest.mark.slow  # the paper's networks at full size, twice
@pytest.mark.parametrize("dataset, architecture", [
    ("market", "two_stream"), ("market", "baseline"), ("fashion", "two_stream"), ("fashion", "baseline"),
])
def test_converted_generator_gives_the_originals_images(dataset, architecture, annotations_real, tmp_path):
    size = DATASETS[dataset][2]
    images, source, target = _pairs(annotations_real, dataset)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(1)
    warp = architecture == "two_stream"
    original = make_generator(size, 1, "mask" if warp else "none", "call", "max", 0, "hm")
    _randomise(original, seed=2)
    original.save_weights(tmp_path / "generator.h5")  # tf_keras writes Keras 2's HDF5 layout for .h5
    expected = original(_original_batch(images, source, target, size, warp), training=False)[2].numpy()
    del original

    ours = load_original_generator(tmp_path / "generator.h5", size, architecture=architecture)
    generated = np.asarray(ours([images, source.astype(np.float32), target.astype(np.float32)], training=False))
    difference = np.abs(generated - expected).max()
    print(f"generator {dataset} {architecture}: largest difference {difference:.3g}")
    assert expected.std() > 0.05  # not a saturated or constant image
    assert difference < TOLERANCE
    if (dataset, architecture) == ("market", "two_stream"):  # once through the converter and a run folder
        from dgan_tf.cli.convert_original import main
        from dgan_tf.run import Run

        assert main(["--generator-weights", str(tmp_path / "generator.h5"), "--dataset", dataset, "--variant", "full",
                     "--run", str(tmp_path / "run")]) == 0
        from_run = Run.open(tmp_path / "run").load_model()  # what test.py, export.py and transfer.py load
        generated = np.asarray(from_run([images, source.astype(np.float32), target.astype(np.float32)], training=False))
        assert np.abs(generated - expected).max() < TOLERANCE


@pytest.mark.slow  # writes and reads the paper's discriminator
@pytest.mark.parametrize("dataset", ["market", "fashion"])
def test_converted_discriminator_gives_the_originals_probabilities(dataset, annotations_real, tmp_path):
    size = DATASETS[dataset][2]
    images, source, target = _pairs(annotations_real, dataset)
    others = np.random.default_rng(3).uniform(-1, 1, size=images.shape).astype(np.float32)
    tf_keras.backend.clear_session()
    tf_keras.utils.set_random_seed(4)
    original = make_discriminator(size, 1, "mask", "call", "max", 0, "hm")
    _randomise(original, seed=5)
    original.save_weights(tmp_path / "discriminator.h5")
    source_maps = np.stack([original_inputs.cords_to_map(k, size) for k in source])
    target_maps = np.stack([original_inputs.cords_to_map(k, size) for k in target])
    expected = original([images, source_maps, others, target_maps], training=False).numpy()  # (B, h * w), flattened

    ours = load_original_discriminator(tmp_path / "discriminator.h5", size)
    probabilities = np.asarray(ours([images, source.astype(np.float32), others, target.astype(np.float32)]))
    difference = np.abs(probabilities.reshape(len(images), -1) - expected).max()
    print(f"discriminator {dataset}: largest difference {difference:.3g}")
    assert expected.std() > 1e-3
    assert difference < TOLERANCE
