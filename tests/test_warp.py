"""Gather-based part warps (dgan_tf.geometry.warp): TF kernel parity, XLA, exact gradients, JAX parity."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from dgan_tf.geometry.warp import warp_part

REPO_ROOT = Path(__file__).resolve().parents[1]


def _random_affines(rng, batch, height, width):
    """Rotations, scales, shears and shifts around the image centre, (B, 8) output -> input."""
    angle = rng.uniform(-0.6, 0.6, batch)
    scale = rng.uniform(0.7, 1.4, (batch, 2))
    shear = rng.uniform(-0.2, 0.2, batch)
    linear = np.stack([
        np.stack([scale[:, 0] * np.cos(angle), -scale[:, 1] * np.sin(angle) + shear], -1),
        np.stack([scale[:, 0] * np.sin(angle), scale[:, 1] * np.cos(angle)], -1),
    ], 1)  # (B, 2, 2)
    center = np.array([width / 2, height / 2])
    shift = rng.uniform(-3, 3, (batch, 2))
    translation = center - np.einsum("bij,j->bi", linear, center) + shift
    affines = np.zeros((batch, 8), dtype=np.float32)
    affines[:, [0, 1, 3, 4]] = linear.reshape(batch, 4)
    affines[:, 2], affines[:, 5] = translation[:, 0], translation[:, 1]
    return affines


def _far_from_rounding_ties(affines, height, width, margin=1e-3):
    """(B, h, w) True where neither source coordinate is within `margin` of a .5 rounding tie."""
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    a = affines.astype(np.float64)[:, :, None, None]
    x_in = a[:, 0] * cols + a[:, 1] * rows + a[:, 2]
    y_in = a[:, 3] * cols + a[:, 4] * rows + a[:, 5]
    tie = lambda v: np.abs(np.abs(v - np.floor(v)) - 0.5) < margin  # noqa: E731
    return ~(tie(x_in) | tie(y_in))


@pytest.fixture
def warp_inputs(rng):
    features = rng.normal(size=(3, 13, 9, 4)).astype(np.float32)
    affines = _random_affines(rng, 3, 13, 9)
    return features, affines


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_matches_keras_affine_transform(warp_inputs, warp_sampling):
    features, affines = warp_inputs
    expected = keras.ops.image.affine_transform(features, affines, interpolation=warp_sampling,
                                                fill_mode="constant", fill_value=0).numpy()
    actual = np.asarray(warp_part(features, affines, warp_sampling))
    assert actual.shape == features.shape
    if warp_sampling == "nearest":
        keep = _far_from_rounding_ties(affines, 13, 9)
        assert keep.mean() > 0.95
        np.testing.assert_array_equal(actual[keep], expected[keep])
    else:
        np.testing.assert_allclose(actual, expected, atol=2e-5)
    assert np.any(actual == 0) and np.any(actual != 0)  # some pixels sample outside, most inside


def test_nearest_rounds_half_away_from_zero():
    features = np.arange(1, 5, dtype=np.float32).reshape(1, 1, 4, 1)  # columns hold 1, 2, 3, 4
    shift = np.array([[1, 0, 0.5, 0, 1, 0, 0, 0], [1, 0, -0.5, 0, 1, 0, 0, 0]], dtype=np.float32)
    warped = np.asarray(warp_part(np.concatenate([features, features]), shift, "nearest"))[..., 0]
    np.testing.assert_array_equal(warped[0, 0], [2, 3, 4, 0])  # x + 0.5 rounds up
    # x - 0.5: -0.5 rounds to -1 (outside), 0.5 to 1, 1.5 to 2, 2.5 to 3 (not half to even).
    np.testing.assert_array_equal(warped[1, 0], [0, 2, 3, 4])


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_xla_gives_the_same_result(warp_inputs, warp_sampling):
    features, affines = warp_inputs
    compiled = tf.function(lambda f, a: warp_part(f, a, warp_sampling), jit_compile=True)
    np.testing.assert_allclose(compiled(features, affines).numpy(), np.asarray(warp_part(features, affines, warp_sampling)),
                               atol=1e-5)


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_gradient_to_features_is_exact(rng, warp_sampling):
    features = tf.constant(rng.normal(size=(1, 4, 5, 2)).astype(np.float64))
    affines = _random_affines(rng, 1, 4, 5)
    with tf.GradientTape() as tape:
        tape.watch(features)
        output = tf.cast(warp_part(tf.cast(features, tf.float32), affines, warp_sampling), tf.float64)
    analytic = tape.jacobian(output, features).numpy().reshape(output.shape.num_elements(), -1)
    numeric = np.zeros_like(analytic)
    base = np.asarray(warp_part(features.numpy().astype(np.float32), affines, warp_sampling)).ravel()
    for index in range(features.shape.num_elements()):
        bumped = features.numpy().copy().ravel()
        bumped[index] += 1.0  # the warp is linear in the features: any step is exact
        out = np.asarray(warp_part(bumped.reshape(features.shape).astype(np.float32), affines, warp_sampling)).ravel()
        numeric[:, index] = out - base
    np.testing.assert_allclose(analytic, numeric, atol=1e-5)
    assert np.abs(analytic).sum() > 0


JAX_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import jax
    import keras
    from dgan_tf.geometry.parts import part_affines, part_masks
    from dgan_tf.layers.deformable_skip import DeformableSkip
    from dgan_tf.geometry.warp import warp_part

    assert keras.backend.backend() == "jax"
    data = dict(np.load(sys.argv[1]))
    out = {}
    for mode in ("nearest", "bilinear"):
        fn = jax.jit(lambda f, a, mode=mode: warp_part(f, a, mode))
        out["warp_" + mode] = np.asarray(fn(data["features"], data["affines"]))
        grad = jax.grad(lambda f, mode=mode: (warp_part(f, data["affines"], mode) * data["cotangent"]).sum())
        out["grad_" + mode] = np.asarray(jax.jit(grad)(data["features"]))
    geometry = jax.jit(lambda s, t: (part_masks(t, (128, 64)), part_affines(s, t)))
    out["masks"], out["part_affines"] = (np.asarray(v) for v in geometry(data["source"], data["target"]))
    skip = DeformableSkip()
    out["skip"] = np.asarray(skip([data["skip_features"], out["masks"], out["part_affines"]]))
    np.savez(sys.argv[2], **out)
""")


def test_jax_gives_the_same_numbers_as_tensorflow(tmp_path, rng):
    """One JAX subprocess (the backend is fixed per process) for every JAX parity check."""
    pytest.importorskip("jax")
    from dgan_tf.geometry.parts import part_affines, part_masks
    from dgan_tf.layers.deformable_skip import DeformableSkip
    from test_geometry import BASE_POSE

    features = rng.normal(size=(2, 16, 8, 3)).astype(np.float32)
    affines = _random_affines(rng, 2, 16, 8)
    source = np.stack([BASE_POSE + rng.integers(-3, 4, BASE_POSE.shape) for _ in range(3)]).astype(np.float32)
    target = np.stack([BASE_POSE + rng.integers(-3, 4, BASE_POSE.shape) for _ in range(3)]).astype(np.float32)
    source[1, 3] = -1  # a missing right elbow: mirrored limb
    data = dict(features=features, affines=affines, cotangent=rng.normal(size=features.shape).astype(np.float32),
                source=source, target=target, skip_features=rng.normal(size=(3, 32, 16, 5)).astype(np.float32))
    np.savez(tmp_path / "inputs.npz", **data)
    script = tmp_path / "jax_parity.py"
    script.write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jax_out = np.load(tmp_path / "out.npz")

    keep = _far_from_rounding_ties(affines, 16, 8)
    for mode in ("nearest", "bilinear"):
        features_tf = tf.constant(features)
        with tf.GradientTape() as tape:
            tape.watch(features_tf)
            warped = warp_part(features_tf, affines, mode)
            loss = tf.reduce_sum(warped * data["cotangent"])
        gradient = tape.gradient(loss, features_tf).numpy()
        if mode == "nearest":
            np.testing.assert_array_equal(jax_out["warp_" + mode][keep], warped.numpy()[keep])
        else:
            np.testing.assert_allclose(jax_out["warp_" + mode], warped.numpy(), atol=1e-5)
            np.testing.assert_allclose(jax_out["grad_" + mode], gradient, atol=1e-5)
    masks = np.asarray(part_masks(target, (128, 64)))
    # JAX without x64 rounds the limb edges in float32, TF in float64: a few edge pixels may differ.
    assert np.mean(jax_out["masks"] != masks) < 1e-4
    np.testing.assert_allclose(jax_out["part_affines"], np.asarray(part_affines(source, target)), atol=1e-3)
    skip = DeformableSkip()([data["skip_features"], jax_out["masks"], jax_out["part_affines"]])
    np.testing.assert_allclose(jax_out["skip"], np.asarray(skip), atol=1e-5)
