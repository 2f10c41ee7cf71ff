"""HDF5 files laid out as Keras 2.0.8 wrote them (save_weights / model.save), for the converter's tests."""

import h5py

from dgan_tf.models.original_weights import original_layer_shapes


def write_keras2_file(path, layers, whole_model=False):
    """An HDF5 file laid out as Keras 2.0.8's save_weights (or, whole_model, model.save) wrote it.

    layers: [(layer name, [(weight name, array, or a shape for a dataset never written)])] in file order.
    """
    with h5py.File(path, "w") as file:
        group = file
        if whole_model:
            file.attrs["model_config"] = b'{"class_name": "Model"}'
            group = file.create_group("model_weights")
        group.attrs["layer_names"] = [name.encode() for name, _ in layers]
        group.attrs["backend"], group.attrs["keras_version"] = b"tensorflow", b"2.0.8"
        for name, weights in layers:
            layer = group.create_group(name)
            layer.attrs["weight_names"] = [f"{name}/{weight}:0".encode() for weight, _ in weights]
            for weight, value in weights:
                if isinstance(value, tuple):  # shape only: HDF5 allocates nothing until data is written
                    layer.create_dataset(f"{name}/{weight}:0", shape=value, dtype="float32")
                else:
                    layer.create_dataset(f"{name}/{weight}:0", data=value)


def original_layers(network, image_size, architecture=None):
    """[(Keras 2 name, [(weight name, shape)])] of one of the original's networks, in creation order."""
    counters, layers = {}, []
    for kind, shapes in original_layer_shapes(network, image_size, architecture):
        counters[kind] = counters.get(kind, 0) + 1
        names = ("gamma", "beta") if kind == "instance_normalization" else ("kernel", "bias")
        layers.append((f"{kind}_{counters[kind]}", list(zip(names, shapes))))
    return layers


def full_size_file(path, network, image_size, architecture=None):
    """A file with the original's layer shapes and no data written (a few KB)."""
    write_keras2_file(path, original_layers(network, image_size, architecture))
    return path
