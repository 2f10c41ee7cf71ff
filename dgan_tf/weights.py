"""Pretrained weight files (VGG19, InceptionV3): found locally or a clear error; never downloaded."""

import os


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained weight file is not where it was looked for; the message says what goes where."""


def keras_home():
    """The Keras folder, as Keras resolves it: $KERAS_HOME, else ~/.keras (/tmp/.keras if ~ is read-only).

    Read at call time (Keras reads it once at import), so a changed KERAS_HOME is honoured.
    """
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def default_weights_path(file_name):
    """Where Keras keeps a downloaded weight file: <keras home>/models/<file_name>."""
    return os.path.join(keras_home(), "models", file_name)


def resolve_weights(file_name, weights_path, what, url, alternatives):
    """`weights_path` if given, else the Keras default location; raise WeightsNotFoundError when absent.

    what: e.g. "VGG19 ImageNet weights"; alternatives: the sentence naming the flags a user can use instead.
    """
    path = os.path.abspath(os.path.expanduser(str(weights_path if weights_path is not None
                                                   else default_weights_path(file_name))))
    if os.path.isfile(path):
        return path
    folder, name = os.path.split(path)
    origin = ("the path given" if weights_path is not None
              else "the Keras models folder ($KERAS_HOME/models, default ~/.keras/models)")
    raise WeightsNotFoundError(
        f"{what} not found: {name} is not in {folder} ({origin}). dgan_tf never downloads weights. "
        f"Get {file_name} from {url}, put it in {os.path.dirname(default_weights_path(file_name))}, {alternatives}")
