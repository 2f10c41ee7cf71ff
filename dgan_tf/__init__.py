"""dgan_tf: Deformable GANs for pose-based human image generation (CVPR 2018) in Keras 3."""

__version__ = "0.1.0"
