"""dgan_tf: Deformable GANs for pose-based human image generation (CVPR 2018) in Keras 3.

Importing the package registers the custom layers, so that `keras.saving.load_model(path)` of any `.keras` file
dgan_tf wrote needs only `import dgan_tf` first, and hides TensorFlow's C++ start-up lines
(dgan_tf.tensorflow_logs; `--verbose` or DGAN_VERBOSE=1 shows them). The public API, imported on first use so that
`import dgan_tf` stays light:

    dgan_tf.load_generator(path)  a run folder, a .keras file or an export -> a generator with .generate(...)
"""

from dgan_tf.tensorflow_logs import quiet_start as _quiet_start

__version__ = "0.2.0"
__all__ = ["load_generator"]

with _quiet_start():
    try:
        import keras as _keras  # noqa: F401
    except ImportError:  # the keypoint-estimation environment has no Keras: nothing to register there
        _keras = None
    if _keras is not None:
        from dgan_tf import layers as _layers  # noqa: F401  (registers the custom layers)


def __getattr__(name):
    # The public API, imported when first used (the inference modules load TensorFlow's SavedModel code).
    if name == "load_generator":
        from dgan_tf.inference.generators import load_generator

        return load_generator
    raise AttributeError(f"module 'dgan_tf' has no attribute {name!r}")
