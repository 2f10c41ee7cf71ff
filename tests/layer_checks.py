"""Standard checks for a custom Keras layer or model: config round trip, symbolic and eager call,
.keras save/load with equal outputs. Reusable by any test module: `check_layer(...)`."""

import os

import keras
import numpy as np


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _to_numpy(outputs):
    return [keras.ops.convert_to_numpy(o) for o in _as_list(outputs)]


def check_config_round_trip(layer):
    """from_config(get_config()) rebuilds a layer with the same config."""
    config = layer.get_config()
    clone = layer.__class__.from_config(config)
    assert clone.get_config() == config, f"config round trip changed {layer.__class__.__name__}'s config"
    return clone


def check_symbolic_call(layer, input_shapes, expected_output_shapes=None):
    """Calling on keras.Input (batch dim None) gives the expected output shapes (None for the batch)."""
    inputs = [keras.Input(shape[1:], batch_size=None) for shape in _as_list_of_shapes(input_shapes)]
    outputs = layer(inputs if len(inputs) > 1 or isinstance(input_shapes, list) else inputs[0])
    shapes = [tuple(o.shape) for o in _as_list(outputs)]
    if expected_output_shapes is not None:
        expected = [(None,) + tuple(s[1:]) for s in _as_list_of_shapes(expected_output_shapes)]
        assert shapes == expected, f"symbolic output shapes {shapes} != expected {expected}"
    return shapes


def _as_list_of_shapes(shapes):
    return list(shapes) if isinstance(shapes, list) else [shapes]


def check_save_load(model_or_layer, inputs, tmp_path, custom_objects=None):
    """A .keras save and reload gives the same outputs on `inputs` (inference mode)."""
    model = model_or_layer
    if not isinstance(model, keras.Model):
        symbolic = [keras.Input(np.shape(x)[1:], batch_size=None, dtype=str(np.asarray(x).dtype))
                    for x in _as_list(inputs)]
        out = model(symbolic if isinstance(inputs, list) else symbolic[0])
        model = keras.Model(symbolic if isinstance(inputs, list) else symbolic[0], out)
    expected = _to_numpy(model(inputs, training=False))
    path = os.path.join(str(tmp_path), "checked.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, custom_objects=custom_objects)
    actual = _to_numpy(reloaded(inputs, training=False))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    return reloaded


def check_layer(layer, inputs, tmp_path, expected_output_shapes=None):
    """All standard checks: config round trip, symbolic call, eager call, .keras save/load.

    `inputs` is one numpy array or a list of them (batch first); returns the eager outputs.
    """
    clone = check_config_round_trip(layer)
    input_shapes = [np.shape(x) for x in inputs] if isinstance(inputs, list) else np.shape(inputs)
    check_symbolic_call(clone, input_shapes, expected_output_shapes)
    eager = _to_numpy(layer(inputs))
    if expected_output_shapes is not None:
        expected = [tuple(s) for s in _as_list_of_shapes(expected_output_shapes)]
        assert [e.shape for e in eager] == expected, f"eager shapes {[e.shape for e in eager]} != {expected}"
    check_save_load(layer, inputs, tmp_path)
    return eager
