"""Analytic FLOP counts of the Keras models and of one training iteration (for achieved TFLOP/s figures).

What is counted: the multiply-accumulates (MACs) of the convolutions and dense layers, as 2 FLOPs
each (one multiply, one add), with zero padding counted as computed (hardware computes it):

- ConvND: output elements x (kernel volume x input channels / groups) MACs.
- ConvNDTranspose: input elements x (kernel volume x output channels / groups) MACs (every input
  element scatters one kernel-sized patch; this is also what a backward-data convolution computes).
  With Keras "same" padding the border rows that the original crops away are counted too.
- Dense: (elements of the input / its last axis) x input features x units MACs.

What is ignored: biases, norms, activations, dropout, concatenation and padding (a few FLOPs per
element, memory-bound), the pose heatmaps, the part masks and affines (the geometry) and the
deformable skips' per-part gather warps (memory-bound gathers; `ignored_layers` lists them), the
losses (the nearest-neighbour loss does n x n x C subtract-abs-min per feature pixel: memory-bound).

A training iteration (pose-gan gan/train.py:58-69 (submodule a4aa9a3), `dgan_tf.training.gan`) takes three
minibatches of B pairs and counts per pair of the G-update minibatch (what "images/s" counts), with backward = 2 x
forward for a network whose weights get gradients (data gradient + weight gradient, each about one forward) and
backward = 1 x forward for a network that is only differentiated through (D in the G update, VGG19):

    D update:  G forward (fake minibatch)                          1 G
               D forward + backward, real and fake minibatches     2 x 3 D = 6 D
    G update:  G forward + backward                                3 G
               D forward + data-gradient backward                  2 D
               VGG19 trunk on target and generated, data gradient  3 V   (percloss, full)
    total:     4 G + 8 D + 3 V per pair
"""

import dataclasses

import keras

from dgan_tf.images import ImageSize, input_image_size

# Per network per pair of the G-update minibatch (see the module docstring).
TRAIN_STEP_MULTIPLIERS = {"generator": 4, "discriminator": 8, "features": 3}

# Layers with weights that are ignored on purpose (memory-bound: a few FLOPs per element).
_MEMORY_BOUND_WITH_WEIGHTS = ("Normalization", "Norm")


@dataclasses.dataclass(frozen=True)
class FlopCount:
    """FLOPs of one forward pass at a given batch size, with the per-layer breakdown."""

    flops: int
    layers: tuple  # ((layer path, class name, flops), ...) for every counted layer
    ignored_layers: tuple  # ((layer path, class name), ...) layers that do work but are not counted


def _conv_flops(layer, input_shape, output_shape):
    kernel_volume = 1
    for size in layer.kernel_size:
        kernel_volume *= int(size)
    channels_last = getattr(layer, "data_format", "channels_last") == "channels_last"
    in_channels = int(input_shape[-1] if channels_last else input_shape[1])
    out_channels = int(output_shape[-1] if channels_last else output_shape[1])
    groups = int(getattr(layer, "groups", 1) or 1)
    transpose = isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                                   keras.layers.Conv3DTranspose))
    if transpose:  # every input element scatters a kernel x (out channels / groups) patch
        macs = _elements(input_shape) * kernel_volume * out_channels // groups
    else:  # every output element gathers a kernel x (in channels / groups) patch
        macs = _elements(output_shape) * kernel_volume * in_channels // groups
    return 2 * macs


def _dense_flops(layer, input_shape, output_shape):
    rows = _elements(input_shape) // int(input_shape[-1])
    return 2 * rows * int(input_shape[-1]) * int(output_shape[-1])


def _elements(shape):
    count = 1
    for size in shape:
        if size is None:
            raise ValueError(f"count_flops needs concrete shapes; received a shape with None: {shape}")
        count *= int(size)
    return count


_COUNTED = (
    ((keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.Conv1DTranspose,
      keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose), _conv_flops),
    ((keras.layers.Dense,), _dense_flops),
)
_UNSUPPORTED_WITH_KERNEL = (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D, keras.layers.EinsumDense)


def _counter(layer):
    for classes, function in _COUNTED:
        if isinstance(layer, classes):
            return function
    return None


def _is_functional(layer):
    return isinstance(layer, keras.Model) and hasattr(layer, "_run_through_graph") and hasattr(layer, "_nodes_by_depth")


def _first_shape(args):
    value = args[0]
    while isinstance(value, (list, tuple)):
        value = value[0]
    return tuple(value.shape)


def _walk(model, inputs, prefix, counted, ignored):
    """Propagate concrete KerasTensor specs through a functional model, recording each layer's FLOPs."""

    def operation_fn(operation):
        path = f"{prefix}{operation.name}"

        def run(*args, **kwargs):
            if _is_functional(operation):
                flat = keras.tree.flatten((args, kwargs))
                return _walk(operation, [x for x in flat if isinstance(x, keras.KerasTensor)], path + "/",
                             counted, ignored)
            kwargs = {k: v for k, v in kwargs.items() if k != "training"}
            outputs = operation.compute_output_spec(*args, **kwargs)
            counter = _counter(operation)
            if counter is not None:
                output_shape = tuple(keras.tree.flatten(outputs)[0].shape)
                counted.append((path, type(operation).__name__, int(counter(operation, _first_shape(args), output_shape))))
            elif isinstance(operation, _UNSUPPORTED_WITH_KERNEL):
                raise NotImplementedError(f"count_flops does not count {type(operation).__name__} ({path})")
            elif getattr(operation, "weights", None) or _is_memory_bound_custom(operation):
                ignored.append((path, type(operation).__name__))
            return outputs

        return run

    return model._run_through_graph(inputs, operation_fn=operation_fn)


def _is_memory_bound_custom(operation):
    """Project layers that compute without weights (geometry, warps, heatmaps): listed as ignored."""
    return type(operation).__module__.startswith("dgan_tf.")


def count_flops(model, input_shapes=None, batch_size=1):
    """FLOPs of one forward pass of a built functional Keras model (see the module docstring for what counts).

    input_shapes: one shape per model input without the batch axis (default: the model's own input
    shapes, which must then be concrete); needed for models with None spatial sizes such as VGG19.
    """
    if not _is_functional(model):
        raise TypeError(f"count_flops needs a functional keras.Model. Received: {type(model).__name__}")
    if input_shapes is None:
        input_shapes = [tuple(x.shape[1:]) for x in model.inputs]
    if len(input_shapes) != len(model.inputs):
        raise ValueError(f"count_flops: the model has {len(model.inputs)} inputs. Received {len(input_shapes)} shapes")
    inputs = [keras.KerasTensor((batch_size, *shape), dtype=x.dtype) for shape, x in zip(input_shapes, model.inputs)]
    counted, ignored = [], []
    _walk(model, inputs, "", counted, ignored)
    return FlopCount(sum(f for _, _, f in counted), tuple(counted), tuple(ignored))


@dataclasses.dataclass(frozen=True)
class TrainStepFlops:
    """Forward FLOPs per pair of each network and the per-pair totals of a training iteration and of inference."""

    generator: int
    discriminator: int
    features: int  # the reconstruction loss's VGG19 trunk on one image (0 for pixel losses)

    @property
    def train_step(self):
        """FLOPs of one iteration per pair of the G-update minibatch: 4 G + 8 D + 3 V."""
        m = TRAIN_STEP_MULTIPLIERS
        return m["generator"] * self.generator + m["discriminator"] * self.discriminator + m["features"] * self.features

    @property
    def inference(self):
        return self.generator

    def as_dict(self):
        return {"generator_forward": self.generator, "discriminator_forward": self.discriminator,
                "features_forward": self.features, "train_step": self.train_step, "inference": self.inference}


def train_step_flops(generator, discriminator, feature_model=None, image_size=None):
    """Per-pair FLOPs of the three networks and of one training iteration (module docstring).

    feature_model: the reconstruction loss's frozen VGG19 model (`ReconstructionLoss.feature_model`)
    or None; image_size (H, W) is needed for it (its input has no static size) and taken from G.
    """
    g = count_flops(generator).flops
    d = count_flops(discriminator).flops
    v = 0
    if feature_model is not None:
        height, width = input_image_size(generator) if image_size is None else ImageSize.of(image_size)
        v = count_flops(feature_model, [(height, width, 3)]).flops
    return TrainStepFlops(int(g), int(d), int(v))
