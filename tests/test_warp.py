"""Gather-based part warps (dgan_tf.geometry.warp): TF kernel parity, XLA, both gradients, JAX parity."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from dgan_tf.geometry.warp import inverse_affines, warp_part

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
        output = tf.cast(warp_part(tf.cast(features, tf.float32), affines, warp_sampling, "exact"), tf.float64)
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


def _round_half_away(value):
    return np.sign(value) * np.floor(np.abs(value) + 0.5)


def inverse_warp_gradient_reference(upstream, affines, warp_sampling):
    """TF 1.x's ImageProjectiveTransform gradient, pixel by pixel in float64 numpy.

    Source pixel (x, y) gets the upstream gradient sampled at T^-1 (x, y) (np.linalg.inv of the
    3x3 matrix), nearest (half away from zero) or bilinear, 0 outside.
    """
    batch, height, width, _ = upstream.shape
    gradient = np.zeros(upstream.shape, np.float64)

    def read(b, y, x):
        inside = 0 <= y < height and 0 <= x < width
        return upstream[b, int(y), int(x)].astype(np.float64) if inside else 0.0

    for b in range(batch):
        matrix = np.append(affines[b].astype(np.float64)[:6], [0.0, 0.0, 1.0]).reshape(3, 3)
        inverse = np.linalg.inv(matrix)
        for y in range(height):
            for x in range(width):
                qx, qy, _ = inverse @ np.array([x, y, 1.0])
                if warp_sampling == "nearest":
                    gradient[b, y, x] = read(b, _round_half_away(qy), _round_half_away(qx))
                else:
                    x0, y0 = np.floor(qx), np.floor(qy)
                    fx, fy = qx - x0, qy - y0
                    gradient[b, y, x] = ((1 - fy) * ((1 - fx) * read(b, y0, x0) + fx * read(b, y0, x0 + 1))
                                         + fy * ((1 - fx) * read(b, y0 + 1, x0) + fx * read(b, y0 + 1, x0 + 1)))
    return gradient


def tf1_inverse_warp_gradient(upstream, affines, warp_sampling):
    """TF 1.x contrib's _image_projective_transform_grad written out with today's kernel (V3)."""
    matrices = tf.reshape(tf.concat([affines, tf.ones((affines.shape[0], 1))], axis=1), (-1, 3, 3))
    flat = tf.reshape(tf.linalg.inv(matrices), (-1, 9))
    flat = (flat / flat[:, 8:9])[:, :8]
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=upstream, transforms=flat, output_shape=upstream.shape[1:3], fill_value=0.0,
        interpolation=warp_sampling.upper(), fill_mode="CONSTANT").numpy()


def _inverse_far_from_ties(affines, height, width):
    """(B, h, w) True where T^-1 of the pixel is not within 1e-3 of a .5 rounding tie."""
    inverse = np.asarray(inverse_affines(affines)).astype(np.float64)
    return _far_from_rounding_ties(inverse, height, width)


def _tf_gradient(features, affines, cotangent, warp_sampling, warp_gradient, jit_compile=None):
    def gradient(f):
        with tf.GradientTape() as tape:
            tape.watch(f)
            loss = tf.reduce_sum(warp_part(f, affines, warp_sampling, warp_gradient) * cotangent)
        return tape.gradient(loss, f)

    if jit_compile is not None:
        gradient = tf.function(gradient, jit_compile=jit_compile)
    return gradient(tf.constant(features)).numpy()


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_original_gradient_is_the_inverse_warp_of_the_upstream_gradient(rng, warp_sampling):
    features = rng.normal(size=(3, 9, 7, 2)).astype(np.float32)
    affines = _random_affines(rng, 3, 9, 7)
    affines[2] = [1, 0, 1000, 0, 1, 1000, 0, 0]  # no_point: samples outside, gets no gradient
    cotangent = rng.normal(size=features.shape).astype(np.float32)
    gradient = _tf_gradient(features, affines, cotangent, warp_sampling, "original")
    reference = inverse_warp_gradient_reference(cotangent, affines, warp_sampling)
    literal = tf1_inverse_warp_gradient(tf.constant(cotangent), tf.constant(affines), warp_sampling)
    if warp_sampling == "nearest":
        keep = _inverse_far_from_ties(affines, 9, 7)
        assert keep.mean() > 0.95
        np.testing.assert_array_equal(gradient[keep], reference[keep].astype(np.float32))
        np.testing.assert_array_equal(gradient[keep], literal[keep])
    else:
        np.testing.assert_allclose(gradient, reference, atol=1e-4)
        np.testing.assert_allclose(gradient, literal, atol=1e-4)
    assert np.all(gradient[2] == 0) and np.abs(gradient[:2]).sum() > 0
    exact = _tf_gradient(features, affines, cotangent, warp_sampling, "exact")
    assert np.abs(exact - gradient).max() > 1e-2  # the two rules differ where the transform scales


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_gradient_option_changes_nothing_forward(warp_inputs, warp_sampling):
    features, affines = warp_inputs
    np.testing.assert_array_equal(np.asarray(warp_part(features, affines, warp_sampling, "original")),
                                  np.asarray(warp_part(features, affines, warp_sampling, "exact")))
    compiled = tf.function(lambda f, a: warp_part(f, a, warp_sampling, "original"), jit_compile=True)
    np.testing.assert_allclose(compiled(features, affines).numpy(),
                               np.asarray(warp_part(features, affines, warp_sampling, "exact")), atol=1e-5)
    with pytest.raises(ValueError, match="Received: warp_gradient='inverse'"):
        warp_part(features, affines, warp_sampling, "inverse")


@pytest.mark.parametrize("warp_sampling", ["nearest", "bilinear"])
def test_original_gradient_under_xla_matches_eager(rng, warp_sampling):
    features = rng.normal(size=(2, 8, 6, 3)).astype(np.float32)
    affines = _random_affines(rng, 2, 8, 6)
    cotangent = rng.normal(size=features.shape).astype(np.float32)
    eager = _tf_gradient(features, affines, cotangent, warp_sampling, "original")
    compiled = _tf_gradient(features, affines, cotangent, warp_sampling, "original", jit_compile=True)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_inverse_affines_are_inverses_and_never_nan():
    affines = np.array([
        [1.3, 0.2, 4.0, -0.1, 0.7, -2.0, 0, 0],
        [1, 0, 1000, 0, 1, 1000, 0, 0],  # no_point
        [1, 2, 3, 2, 4, 6, 0, 0],  # singular
        [1e-4, 0, 0, 0, 1e-4, 0, 0, 0],  # |det| = 1e-8: treated as singular
        [np.nan, 0, 0, 0, 1, 0, 0, 0],
        [np.inf, 0, 0, 0, 1, 0, 0, 0],
    ], dtype=np.float32)
    inverse = np.asarray(inverse_affines(affines))
    assert np.all(np.isfinite(inverse))
    square = lambda a: np.append(a[:6].astype(np.float64), [0, 0, 1]).reshape(3, 3)  # noqa: E731
    np.testing.assert_allclose(square(inverse[0]) @ square(affines[0]), np.eye(3), atol=1e-6)
    np.testing.assert_allclose(inverse[1], [1, 0, -1000, 0, 1, -1000, 0, 0])
    for row in inverse[2:]:
        np.testing.assert_allclose(row, [1, 0, -1000, 0, 1, -1000, 0, 0])  # samples outside: zero gradient
    features = np.ones((len(affines), 4, 4, 1), np.float32)
    gradient = _tf_gradient(features, np.nan_to_num(affines, posinf=1e30), features, "bilinear", "original")
    assert np.all(np.isfinite(gradient)) and np.all(gradient[2:5] == 0)


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
        for rule in ("exact", "original"):
            loss = lambda f, a, mode=mode, rule=rule: (warp_part(f, a, mode, rule) * data["cotangent"]).sum()
            out[f"grad_{rule}_{mode}"] = np.asarray(jax.jit(jax.grad(loss))(data["features"], data["affines"]))
    from dgan_tf.geometry.heatmaps import pose_heatmaps
    out["heatmaps"] = np.asarray(jax.jit(lambda k: pose_heatmaps(k, (128, 64)))(data["target"]))
    geometry = jax.jit(lambda s, t: (part_masks(t, (128, 64)), part_affines(s, t)))
    out["masks"], out["part_affines"] = (np.asarray(v) for v in geometry(data["source"], data["target"]))
    skip = DeformableSkip()
    out["skip"] = np.asarray(skip([data["skip_features"], out["masks"], out["part_affines"]]))
    for mode in ("nearest", "bilinear"):
        for part_max in ("split", "first"):
            skip_mode = DeformableSkip(warp_sampling=mode, part_max=part_max)
            skip_loss = lambda f, skip_mode=skip_mode: (
                skip_mode([f, data["skip_masks"], data["skip_affines"]]) ** 2).sum()
            out[f"skip_grad_{mode}_{part_max}"] = np.asarray(jax.jit(jax.grad(skip_loss))(data["skip_features"]))
    np.savez(sys.argv[2], **out)
""")


def test_jax_gives_the_same_numbers_as_tensorflow(tmp_path, rng):
    """One JAX subprocess (the backend is fixed per process) for every JAX parity check: warps and both
    gradients under jax.jit, against TensorFlow and the numpy reference of the inverse-warp rule."""
    pytest.importorskip("jax")
    from dgan_tf.geometry.parts import part_affines, part_masks
    from dgan_tf.layers.deformable_skip import DeformableSkip
    from test_geometry import BASE_POSE

    features = rng.normal(size=(2, 16, 8, 3)).astype(np.float32)
    affines = _random_affines(rng, 2, 16, 8)
    source = np.stack([BASE_POSE + rng.integers(-3, 4, BASE_POSE.shape) for _ in range(3)]).astype(np.float32)
    target = np.stack([BASE_POSE + rng.integers(-3, 4, BASE_POSE.shape) for _ in range(3)]).astype(np.float32)
    source[1, 3] = -1  # a missing right elbow: mirrored limb
    skip_masks = np.asarray(part_masks(target, (128, 64)))
    skip_affines = np.asarray(part_affines(source, target))
    data = dict(features=features, affines=affines, cotangent=rng.normal(size=features.shape).astype(np.float32),
                source=source, target=target, skip_features=rng.normal(size=(3, 32, 16, 5)).astype(np.float32),
                skip_masks=skip_masks, skip_affines=skip_affines)
    np.savez(tmp_path / "inputs.npz", **data)
    script = tmp_path / "jax_parity.py"
    script.write_text(JAX_SCRIPT)
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=str(REPO_ROOT), JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npz")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    jax_out = np.load(tmp_path / "out.npz")

    keep = _far_from_rounding_ties(affines, 16, 8)
    keep_inverse = _inverse_far_from_ties(affines, 16, 8)
    for mode in ("nearest", "bilinear"):
        warped = np.asarray(warp_part(features, affines, mode))
        exact = _tf_gradient(features, affines, data["cotangent"], mode, "exact")
        original = _tf_gradient(features, affines, data["cotangent"], mode, "original")
        reference = inverse_warp_gradient_reference(data["cotangent"], affines, mode)
        if mode == "nearest":
            np.testing.assert_array_equal(jax_out["warp_" + mode][keep], warped[keep])
            np.testing.assert_array_equal(jax_out["grad_original_" + mode][keep_inverse], original[keep_inverse])
            np.testing.assert_array_equal(jax_out["grad_original_" + mode][keep_inverse],
                                          reference[keep_inverse].astype(np.float32))
        else:
            np.testing.assert_allclose(jax_out["warp_" + mode], warped, atol=1e-5)
            np.testing.assert_allclose(jax_out["grad_exact_" + mode], exact, atol=1e-5)
            np.testing.assert_allclose(jax_out["grad_original_" + mode], original, atol=1e-5)
            np.testing.assert_allclose(jax_out["grad_original_" + mode], reference, atol=1e-4)
    from dgan_tf.geometry.heatmaps import pose_heatmaps
    np.testing.assert_array_equal(jax_out["heatmaps"], np.asarray(pose_heatmaps(target, (128, 64))))
    masks = np.asarray(part_masks(target, (128, 64)))
    # JAX without x64 rounds the limb edges in float32, TF in float64: a few edge pixels may differ.
    assert np.mean(jax_out["masks"] != masks) < 1e-4
    np.testing.assert_allclose(jax_out["part_affines"], np.asarray(part_affines(source, target)), atol=1e-3)
    skip = DeformableSkip()([data["skip_features"], jax_out["masks"], jax_out["part_affines"]])
    np.testing.assert_allclose(jax_out["skip"], np.asarray(skip), atol=1e-5)
    # With nearest sampling parts often read the same pixel: ties in the max are shared ("split") or go to the
    # earlier part ("first") alike on both; jax.jit's gradient of the max stays finite with bilinear values too.
    skip_features = tf.constant(data["skip_features"])
    for mode in ("nearest", "bilinear"):
        for part_max in ("split", "first"):
            with tf.GradientTape() as tape:
                tape.watch(skip_features)
                skip = DeformableSkip(warp_sampling=mode, part_max=part_max)([skip_features, skip_masks, skip_affines])
                skip_loss = tf.reduce_sum(skip**2)
            jax_gradient = jax_out[f"skip_grad_{mode}_{part_max}"]
            assert np.all(np.isfinite(jax_gradient))
            np.testing.assert_allclose(jax_gradient, tape.gradient(skip_loss, skip_features).numpy(), atol=1e-4)
