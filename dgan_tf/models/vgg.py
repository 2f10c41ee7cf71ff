"""Frozen VGG19 feature extractor for the perceptual and nearest-neighbour losses.
The original's: pose-gan gan/layer_utils.py:28-47 (submodule a4aa9a3), content_features_model.

Takes images in [-1, 1], applies Caffe preprocessing and returns post-ReLU features of one layer.
Weights: the path given (--vgg-weights), else the Keras cache, else downloaded from Keras's URL with its
md5 checked, unless offline (see dgan_tf.weights); a failure raises `WeightsNotFoundError` saying what
goes where and what the alternatives are, a file that is not VGG19's `WeightsFileError` naming it.
"""

import keras
from keras import ops

from dgan_tf import weights
from dgan_tf.layers.registration import register
from dgan_tf.options import PRETRAINED_WEIGHTS, VGG_MEANS, check_choice
from dgan_tf.weights import WeightsNotFoundError  # noqa: F401  (part of this module's API)
from dgan_tf.weights import load_weight_file

VGG19_NOTOP_FILENAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
VGG19_NOTOP_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + VGG19_NOTOP_FILENAME
)
# ImageNet channel means in BGR order (Caffe preprocessing).
BGR_MEANS = (103.939, 116.779, 123.68)
VGG19_LAYER_NAMES = tuple(
    f"block{block}_conv{conv}"
    for block, convs in ((1, 2), (2, 2), (3, 4), (4, 4), (5, 4))
    for conv in range(1, convs + 1)
)


# The md5 Keras checks (keras/src/applications/vgg19.py, include_top=False).
VGG19_NOTOP_MD5 = "253f8cb515780f3b799900260a226db6"
VGG19_NOTOP = weights.WeightFile(
    file_name=VGG19_NOTOP_FILENAME, url=VGG19_NOTOP_URL, file_hash=VGG19_NOTOP_MD5,
    what="VGG19 ImageNet weights (no top)", path_flag="--vgg-weights PATH",
    alternatives="or train without VGG with --features pixels.")


def resolve_vgg19_weights(weights_path=None, offline=False):
    """The weights file to load: `weights_path` if given, else the Keras cache, else a verified download.

    offline=True (or $DGAN_OFFLINE) forbids the download; raises WeightsNotFoundError when nothing is found.
    """
    return weights.resolve_weights(VGG19_NOTOP, weights_path, offline=offline)


@register
class VggPreprocess(keras.layers.Layer):
    """Images in [-1, 1] -> Caffe VGG input: [0, 255], RGB->BGR, minus the BGR ImageNet means.

    vgg_mean="original" (default) reproduces the original: the means are subtracted BEFORE the
    flip, so they land on the wrong channels (the B mean on R, the R mean on B); "correct"
    subtracts them after the flip, as Keras's own preprocess_input does.
    """

    def __init__(self, vgg_mean="original", **kwargs):
        super().__init__(**kwargs)
        self.vgg_mean = check_choice("vgg_mean", vgg_mean, VGG_MEANS)

    def call(self, images):
        x = (ops.cast(images, "float32") + 1.0) * 127.5  # (B, H, W, 3) RGB in [0, 255]
        means = ops.convert_to_tensor(BGR_MEANS, dtype="float32")  # (3,)
        if self.vgg_mean == "original":
            x = ops.flip(x - means, axis=-1)
        else:
            x = ops.flip(x, axis=-1) - means
        return ops.cast(x, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "caffe_mean_quirk" in config:  # files saved before vgg_mean replaced the bool
            config["vgg_mean"] = "original" if config.pop("caffe_mean_quirk") else "correct"
        return super().from_config(config)

    def get_config(self):
        config = super().get_config()
        config.update({"vgg_mean": self.vgg_mean})
        return config


def build_vgg_features(layer_name, weights_path=None, weights="imagenet", vgg_mean="original", offline=False):
    """Frozen VGG19 truncated at `layer_name`: images (B, H, W, 3) in [-1, 1] -> features (B, h, w, C).

    weights="imagenet" loads `weights_path`, else the Keras cache, else downloads them unless `offline`
    (raising WeightsNotFoundError when none works); weights="random" is for tests only. vgg_mean:
    "original" (means before the RGB->BGR flip, the original's quirk) or "correct"; see VggPreprocess.
    """
    if layer_name not in VGG19_LAYER_NAMES:
        raise ValueError(f"Unknown VGG19 layer. Expected one of {VGG19_LAYER_NAMES}. Received: layer_name={layer_name!r}")
    if weights not in PRETRAINED_WEIGHTS:
        raise ValueError(f"Unknown weights. Expected one of {PRETRAINED_WEIGHTS}. Received: weights={weights!r}")
    if weights == "random" and weights_path is not None:
        raise ValueError(f"weights='random' takes no weights_path. Received: weights_path={weights_path!r}")
    path = resolve_vgg19_weights(weights_path, offline=offline) if weights == "imagenet" else None
    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    if path is not None:
        load_weight_file(vgg, VGG19_NOTOP, path)
    trunk = keras.Model(vgg.input, vgg.get_layer(layer_name).output, name=f"vgg19_{layer_name}_trunk")
    images = keras.Input((None, None, 3), name="images")  # (B, H, W, 3) in [-1, 1]
    features = trunk(VggPreprocess(vgg_mean, name="vgg_preprocess")(images))  # (B, h, w, C)
    model = keras.Model(images, features, name=f"vgg19_{layer_name}")
    model.trainable = False
    return model
