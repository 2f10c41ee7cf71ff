"""Every choice list of the project, defined once: the models, the config and the command line read them here.

Datasets live in `dgan_tf.data.datasets.DATASETS` and variants in `dgan_tf.variants.VARIANTS`; both are
registries with more than a name per entry. Adding a choice here makes it valid everywhere at once.
"""

ARCHITECTURES = ("two_stream", "baseline")  # deformable two-stream generator, or the paper's one-encoder baseline
RECONSTRUCTIONS = ("l1", "nn")  # L1, or the nearest-neighbour loss
FEATURES = ("pixels", "vgg19_block2_conv1", "vgg19_block1_conv2")  # feature space of the reconstruction loss
NORMS = ("scalar", "instance")  # the original's one-gamma norm over (H, W, C), or per-channel instance norm
WARP_SAMPLINGS = ("nearest", "bilinear")  # the original's nearest sampling of the part warp, or bilinear
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
# The original's quirks come first: each is the default, the clean alternative second (pose-gan at 8693ec4:
# pose_utils.py:58, TF 1.x contrib's gradient for pose_transform.py:45, gan/layer_utils.py:31-37 of submodule a4aa9a3).
HEATMAPS = ("staircase", "gaussian")  # exp(floor(-d^2 / 2 sigma^2)) as Python 2 computed it, or the smooth Gaussian
WARP_GRADIENTS = ("original", "exact")  # TF 1.x's inverse-warp gradient of the part warp, or the gather's exact one
VGG_MEANS = ("original", "correct")  # ImageNet means subtracted before the RGB->BGR flip (swapped), or after


def check_choice(name, value, choices):
    """Raise ValueError naming the argument, the valid choices and the value received."""
    if value not in choices:
        raise ValueError(f"Unknown {name}. Expected one of {tuple(choices)}. Received: {name}={value!r}")
    return value
