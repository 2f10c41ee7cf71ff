"""dgan_tf: Deformable GANs for pose-based human image generation (CVPR 2018) in Keras 3.

Importing the package registers every custom Keras object (layers, models), so that
`keras.saving.load_model(path)` of any `.keras` file dgan_tf wrote needs only `import dgan_tf`.
"""

__version__ = "0.2.0"

try:
    import keras as _keras  # noqa: F401
except ImportError:  # the keypoint-estimation environment has no Keras: nothing to register there
    pass
else:
    from dgan_tf import layers as _layers  # noqa: F401  (registers the custom layers)
