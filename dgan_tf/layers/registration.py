"""How dgan_tf's Keras classes are named in `.keras` files, so that a file loaded without dgan_tf says what to do.

Keras stores each custom class as "PACKAGE>Class" (its registered name) and finds it again only if something
registered that name in the loading process. Without `import dgan_tf`, `keras.saving.load_model` stops with
"Could not locate class 'KeypointGuard' ... Full object config: {...}", a message whose only words of ours are the
file's own: so the package name carries the fix. Files written by earlier versions (package "dgan_tf", up to commit
c526ced) still load: both names are registered.
"""

import keras

PACKAGE = "dgan_tf (import dgan_tf before loading)"
OLD_PACKAGE = "dgan_tf"  # the package name in files written by earlier versions
PACKAGES = (PACKAGE, OLD_PACKAGE)


def register(cls):
    """Class decorator: register `cls` under "PACKAGE>Name" (what files are written with) and "dgan_tf>Name"."""
    cls = keras.saving.register_keras_serializable(package=PACKAGE)(cls)
    keras.saving.get_custom_objects()[f"{OLD_PACKAGE}>{cls.__name__}"] = cls
    return cls


def is_dgan_tf_name(registered_name):
    """True for a registered name that dgan_tf writes or wrote ("PACKAGE>Class" of either package)."""
    package, separator, name = str(registered_name).rpartition(">")
    return bool(separator and name) and package in PACKAGES
