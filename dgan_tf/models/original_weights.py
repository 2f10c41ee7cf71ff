"""Read the original's Keras 2 HDF5 weight files into dgan_tf's generator and discriminator.

The authors released generators written by Keras 2.0.8 (`model.save` in pose-gan gan/train.py:55-56,
a4aa9a3; read back by `generator.load_weights` in pose-gan test.py:118 at 8693ec4). A weight file has a
root attribute `layer_names` and one group per layer with an attribute `weight_names` naming its arrays; a
whole-model file holds the same under its `model_weights` group.

Which layer is which: the file lists layers in Keras 2's topological order, by depth, in which the
two-stream generator's appearance and pose encoders interleave. Their automatic names `<class>_<n>`
(conv2d_3, conv2d_transpose_1, instance_normalization_7; tf_keras leaves out `_0`) number each class's layers
in creation order, the order of pose-gan conditional_gan.py at 8693ec4: appearance encoder, pose encoder,
decoder (make_generator, :102-143), one encoder then the decoder for the baseline, the layers of
make_discriminator (:146-176) in turn. So the file's layers of each class, sorted by n, pair with ours of
that class in our creation order; every array is checked by shape before anything is assigned.

API: read_original_weights(path), describe_original_file(path), check_original_file(path, network, image_size),
assign_original_weights(model, layers), load_original_generator(path, image_size, architecture),
load_original_discriminator(path, image_size),
original_parameter_count(network, image_size, architecture), KNOWN_NETWORKS.
"""

import dataclasses
import re
from pathlib import Path

import keras

from dgan_tf.layers.normalization import ScalarInstanceNorm
from dgan_tf.models.discriminator import DOWN_FILTERS, build_discriminator
from dgan_tf.models.generator import build_generator, generator_filters
from dgan_tf.variants import VARIANTS

CONV, DECONV, NORM = "conv2d", "conv2d_transpose", "instance_normalization"  # Keras 2's automatic name prefixes
_AUTOMATIC_NAME = re.compile(r"^(?P<kind>[a-z][a-z0-9_]*?)(?:_(?P<number>\d+))?$")
_DISCRIMINATOR_FIRST_FILTERS = 64
_IMAGE_CHANNELS, _JOINTS = 3, 18


@dataclasses.dataclass(frozen=True)
class OriginalNetwork:
    """One network the authors trained: generator (two_stream or baseline) or discriminator, at a dataset's size."""

    network: str  # "generator" or "discriminator"
    dataset: str  # "market" or "fashion"
    image_size: tuple
    architecture: str = None  # generator only: "two_stream" or "baseline"

    @property
    def parameters(self):
        return original_parameter_count(self.network, self.image_size, self.architecture)

    def __str__(self):
        size = f"{self.dataset} {self.image_size[0]}x{self.image_size[1]}"
        if self.network == "discriminator":
            return f"discriminator at {size}"
        variants = ", ".join(v.name for v in VARIANTS.values() if v.architecture == self.architecture)
        return f"{self.architecture} generator (variants {variants}) at {size}"


# The original's image sizes (pose-gan cmd.py:79-84 at 8693ec4).
_DATASET_SIZES = {"market": (128, 64), "fashion": (256, 256)}
ORIGINAL_DATASETS = tuple(_DATASET_SIZES)  # the datasets the authors released models of
KNOWN_NETWORKS = tuple(
    [OriginalNetwork("generator", d, s, a) for d, s in _DATASET_SIZES.items() for a in ("two_stream", "baseline")]
    + [OriginalNetwork("discriminator", d, s) for d, s in _DATASET_SIZES.items()]
)


# ---- the original's layers, in creation order


def _encoder_shapes(in_channels, filters):
    """conditional_gan.py:34-48: Conv 3x3 with bias, then blocks of Conv 4x4 (kh, kw, in, out) and a norm but the last."""
    layers = [(CONV, [(3, 3, in_channels, filters[0]), (filters[0],)])]
    for index in range(1, len(filters)):
        layers.append((CONV, [(4, 4, filters[index - 1], filters[index])]))
        if index < len(filters) - 1:
            layers.append((NORM, [(1,), (1,)]))
    return layers


def _decoder_shapes(skip_channels, filters):
    """conditional_gan.py:51-68 over skips deepest first: ConvTranspose 4x4 (kh, kw, out, in) + norm, then Conv 3x3."""
    layers, previous = [], 0
    for skip, count in zip(skip_channels[:-1], filters[:-1]):
        layers += [(DECONV, [(4, 4, count, previous + skip)]), (NORM, [(1,), (1,)])]
        previous = count
    layers.append((CONV, [(3, 3, previous + skip_channels[-1], filters[-1]), (filters[-1],)]))
    return layers


def original_layer_shapes(network, image_size, architecture=None):
    """[(class prefix, [array shapes])] of the original's weight-bearing layers in creation order."""
    if network == "discriminator":
        layers = [(CONV, [(4, 4, 2 * _IMAGE_CHANNELS + 2 * _JOINTS, _DISCRIMINATOR_FIRST_FILTERS),
                          (_DISCRIMINATOR_FIRST_FILTERS,)])]
        previous = _DISCRIMINATOR_FIRST_FILTERS
        for count in DOWN_FILTERS:
            layers += [(CONV, [(4, 4, previous, count)]), (NORM, [(1,), (1,)])]
            previous = count
        return layers + [(CONV, [(4, 4, previous, 1)])]
    if network != "generator":
        raise ValueError(f"network must be 'generator' or 'discriminator'. Received: network={network!r}")
    encoder_filters, decoder_filters = generator_filters(tuple(image_size))
    if architecture == "baseline":
        encoders = _encoder_shapes(_IMAGE_CHANNELS + 2 * _JOINTS, encoder_filters)
        skips = encoder_filters
    elif architecture == "two_stream":
        encoders = _encoder_shapes(_IMAGE_CHANNELS + _JOINTS, encoder_filters) + _encoder_shapes(_JOINTS, encoder_filters)
        skips = tuple(2 * count for count in encoder_filters)
    else:
        raise ValueError(f"architecture must be 'two_stream' or 'baseline'. Received: architecture={architecture!r}")
    return encoders + _decoder_shapes(skips[::-1], decoder_filters)


def _size(shape):
    total = 1
    for dimension in shape:
        total *= int(dimension)
    return total


def original_parameter_count(network, image_size, architecture=None):
    """Parameters of one of the original's networks (e.g. 61,109,085 for the two-stream generator at 128x64)."""
    return sum(_size(shape) for _, shapes in original_layer_shapes(network, image_size, architecture) for shape in shapes)


def _looks_like(parameters):
    """Words for what a parameter count matches among KNOWN_NETWORKS."""
    matches = [network for network in KNOWN_NETWORKS if network.parameters == parameters]
    if not matches:
        return "which matches none of the original's networks"
    return "which is the original's " + " or ".join(str(m) for m in matches)


# ---- reading


def _strings(group, name):
    """A list-of-strings attribute, also when Keras split a long one into name0, name1, ..."""
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values += list(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _weights_group(file, path):
    for group in (file, file.get("model_weights")):
        if group is not None and ("layer_names" in group.attrs or "layer_names0" in group.attrs):
            return group
    raise ValueError(
        f"{path} is not a Keras 2 HDF5 weight file: neither its root nor a `model_weights` group has a "
        "`layer_names` attribute (expected a file written by Keras 2's save_weights or model.save)")


def _read(path, load):
    """[(layer name, [arrays, or their shapes when not load])] of the layers with weights, in file order."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No original weight file at {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not an HDF5 file ({error})") from None
    with file:
        group = _weights_group(file, path)
        layers = []
        for name in _strings(group, "layer_names"):
            if name not in group:
                raise ValueError(f"{path}: layer {name!r} is listed in `layer_names` but has no group")
            weight_names = _strings(group[name], "weight_names")
            datasets = [group[name][weight] for weight in weight_names]
            if datasets:
                layers.append((name, [d[()] if load else tuple(d.shape) for d in datasets]))
        return layers


def read_original_weights(path):
    """[(layer name, [numpy arrays])] of a Keras 2 weight or whole-model HDF5 file, layers with weights only,
    in the file's order."""
    return _read(path, load=True)


@dataclasses.dataclass(frozen=True)
class OriginalFileSummary:
    """What an original weight file holds: its layers with weights, their total size and what that matches."""

    path: str
    layers: int
    parameters: int
    matches: tuple  # the KNOWN_NETWORKS with that parameter count

    def __str__(self):
        return f"{self.path}: {self.parameters:,} parameters in {self.layers} layers with weights, " \
               f"{_looks_like(self.parameters)}"


def describe_original_file(path):
    """Summary of an original weight file (its arrays are not read): parameter count and the networks it matches."""
    layers = _read(path, load=False)
    parameters = sum(_size(shape) for _, shapes in layers for shape in shapes)
    matches = tuple(network for network in KNOWN_NETWORKS if network.parameters == parameters)
    return OriginalFileSummary(str(path), len(layers), parameters, matches)


# ---- matching and assigning


def _kind_of_ours(layer):
    if isinstance(layer, keras.layers.Conv2DTranspose):
        return DECONV
    if isinstance(layer, keras.layers.Conv2D):
        return CONV
    if isinstance(layer, (ScalarInstanceNorm, keras.layers.GroupNormalization)):
        return NORM
    raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) has no counterpart in the original's networks")


def _blocks(names, prefix, start, parts):
    """f"{prefix}{i}_{part}" for i = start, start + 1, ... while the first part exists, each part that exists."""
    found, index = [], start
    while f"{prefix}{index}_{parts[0]}" in names:
        found += [f"{prefix}{index}_{part}" for part in parts if f"{prefix}{index}_{part}" in names]
        index += 1
    return found


def _creation_order(model):
    """Our weight-bearing layers in the original's creation order, by the names build_generator and
    build_discriminator give them."""
    names = {layer.name for layer in model.layers}
    if "conv_in" in names:
        order = ["conv_in"] + _blocks(names, "down", 1, ("conv", "norm"))
    else:
        prefixes = [p for p in ("appearance", "pose", "encoder") if f"{p}_conv0" in names]
        if not prefixes:
            raise ValueError(f"model {model.name!r} is not a dgan_tf generator or discriminator (no layer named "
                             "appearance_conv0, encoder_conv0 or conv_in)")
        order = []
        for prefix in prefixes:
            order += [f"{prefix}_conv0"] + _blocks(names, f"{prefix}_down", 1, ("conv", "norm"))
        order += _blocks(names, "decoder_up", 0, ("deconv", "norm")) + ["decoder_out_conv"]
    missing = [layer.name for layer in model.layers if layer.weights and layer.name not in order]
    if missing:
        raise ValueError(f"model {model.name!r} has layers with weights that the original has not: {missing}")
    return [model.get_layer(name) for name in order]


def _sorted_by_creation(layers, source):
    """{class prefix: [(name, arrays)]} of the file's layers, each class sorted by its automatic name's number."""
    by_kind = {}
    for name, arrays in layers:
        match = _AUTOMATIC_NAME.match(name)
        if not match or match["kind"] not in (CONV, DECONV, NORM):
            raise ValueError(f"{source}: layer {name!r} is not a layer of the original's networks (expected Keras's "
                             f"automatic names {CONV}_<n>, {DECONV}_<n>, {NORM}_<n>)")
        by_kind.setdefault(match["kind"], []).append((int(match["number"] or 0), name, arrays))
    return {kind: [(name, arrays) for _, name, arrays in sorted(items)] for kind, items in by_kind.items()}


def _class_counts(by_kind):
    """'13 conv2d, 5 conv2d_transpose, 13 instance_normalization'."""
    return ", ".join(f"{len(by_kind.get(kind, ()))} {kind}" for kind in (CONV, DECONV, NORM))


def _model_words(model, parameters):
    return f"the model {model.name!r} has {parameters:,} parameters, {_looks_like(parameters)}"


def assign_original_weights(model, layers, source="the original weights"):
    """Assign [(layer name, [arrays])] (read_original_weights) to a dgan_tf generator or discriminator.

    Nothing is assigned unless every layer pairs and every array has our variable's shape; a file of
    another network, size or variant is refused with what it looks like. Returns the model.
    """
    ours = _creation_order(model)
    parameters = sum(int(a.size) for _, arrays in layers for a in arrays)
    model_parameters = sum(_size(v.shape) for layer in ours for v in layer.weights)
    if parameters != model_parameters:
        raise ValueError(f"{source} holds {parameters:,} parameters in {len(layers)} layers with weights, "
                         f"{_looks_like(parameters)}; {_model_words(model, model_parameters)}. "
                         "Build the model the file was trained as (image size and architecture).")
    theirs = _sorted_by_creation(layers, source)
    ours_by_kind = {}
    for layer in ours:
        ours_by_kind.setdefault(_kind_of_ours(layer), []).append(layer)
    if _class_counts(theirs) != _class_counts(ours_by_kind):
        raise ValueError(f"{source} has layers {_class_counts(theirs)}; the model {model.name!r} has the same number "
                         f"of parameters in layers {_class_counts(ours_by_kind)}")
    assignments = []
    for kind, our_layers in ours_by_kind.items():
        for layer, (name, arrays) in zip(our_layers, theirs[kind]):
            variables = layer.weights
            shapes = [tuple(a.shape) for a in arrays]
            wanted = [tuple(v.shape) for v in variables]
            if shapes != wanted:
                raise ValueError(f"{source}: layer {name!r} has arrays of shapes {shapes}, but our layer {layer.name!r} "
                                 f"has {wanted}")
            assignments += list(zip(variables, arrays))
    for variable, array in assignments:
        variable.assign(array)
    return model


def check_original_file(path, network, image_size, architecture=None):
    """Refuse a file of another network, size or variant before a model is built."""
    summary = describe_original_file(path)
    wanted = original_parameter_count(network, image_size, architecture)
    if summary.parameters != wanted:
        kind = f"the {architecture} {network}" if architecture else f"the {network}"
        raise ValueError(f"{summary}; {kind} at {tuple(image_size)} has {wanted:,}. "
                         "Pass the image size and architecture the file was trained with.")


def load_original_generator(path, image_size, architecture="two_stream", **generator_kwargs):
    """build_generator(image_size, architecture, **generator_kwargs) with the weights of an original file."""
    check_original_file(path, "generator", image_size, architecture)
    model = build_generator(image_size, architecture=architecture, **generator_kwargs)
    return assign_original_weights(model, read_original_weights(path), source=str(path))


def load_original_discriminator(path, image_size, **discriminator_kwargs):
    """build_discriminator(image_size, **discriminator_kwargs) with the weights of an original file."""
    check_original_file(path, "discriminator", image_size)
    model = build_discriminator(image_size, **discriminator_kwargs)
    return assign_original_weights(model, read_original_weights(path), source=str(path))
