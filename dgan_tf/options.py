"""Every choice list of the project, defined once: the models, the config, the tools and the command line read
them here, so adding a choice here makes it valid everywhere at once.

Registries with more than a name per entry live with what they describe: datasets in
`dgan_tf.data.datasets.DATASETS`, variants in `dgan_tf.variants.VARIANTS`, generator loss terms in
`dgan_tf.loss_terms.GENERATOR_TERMS`.
"""

ARCHITECTURES = ("two_stream", "baseline")  # deformable two-stream generator, or the paper's one-encoder baseline
RECONSTRUCTIONS = ("l1", "nn")  # L1, or the nearest-neighbour loss
FEATURES = ("pixels", "vgg19_block2_conv1", "vgg19_block1_conv2")  # feature space of the reconstruction loss
NORMS = ("scalar", "instance")  # the original's one-gamma norm over (H, W, C), or per-channel instance norm
WARP_SAMPLINGS = ("nearest", "bilinear")  # the original's nearest sampling of the part warp, or bilinear
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")  # Keras dtype policies of training
EXPORT_PRECISIONS = ("float32", "bfloat16")  # what an exported graph computes in; its inputs and outputs stay the same
# The original's quirks come first: each is the default, the clean alternative second (pose-gan at 8693ec4:
# pose_utils.py:58, TF 1.x contrib's gradient for pose_transform.py:45, gan/layer_utils.py:31-37 of submodule a4aa9a3,
# reduce_max at pose_transform.py:59).
HEATMAPS = ("staircase", "gaussian")  # exp(floor(-d^2 / 2 sigma^2)) as Python 2 computed it, or the smooth Gaussian
WARP_GRADIENTS = ("original", "exact")  # TF 1.x's inverse-warp gradient of the part warp, or the gather's exact one
VGG_MEANS = ("original", "correct")  # ImageNet means subtracted before the RGB->BGR flip (swapped), or after
# The max over the ten masked part warps: a tie's gradient split equally among the tied parts (reduce_max over the
# stacked parts), or all of it to the first tied part (a running maximum, part by part).
PART_MAXES = ("split", "first")

SPLITS = ("train", "test")  # the datasets' splits
PRETRAINED_WEIGHTS = ("imagenet", "random")  # VGG19 / InceptionV3 weights; "random" is for tests and benchmarks only
INCEPTION_KINDS = ("2015", "keras")  # IS/FID network: the 2015 graph (published values) or Keras's InceptionV3
FID_REFERENCES = ("train", "test")  # FID's real set: the training images (later papers) or the test targets
SSIM_VARIANTS = ("original", "gfla")  # the paper's SSIM settings, or win_size 51 / data range 1 (GFLA, 2020 on)
PREPARED_DATASETS = ("market", "fashion")  # datasets whose official downloads scripts/prepare_dataset.py lays out
LINK_MODES = ("copy", "hardlink", "symlink")  # how prepare_dataset places the images
NAMINGS = ("defgan", "patn")  # DeepFashion file namings: Def-GAN's (fasion...) or PATN's (fashion...)
ROW_NAMES = ("file", "relative")  # annotation rows named by file name, or by path from the images' common folder


def check_choice(name, value, choices):
    """Raise ValueError naming the argument, the valid choices and the value received."""
    if value not in choices:
        raise ValueError(f"Unknown {name}. Expected one of {tuple(choices)}. Received: {name}={value!r}")
    return value
