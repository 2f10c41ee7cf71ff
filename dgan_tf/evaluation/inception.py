"""Inception networks for the Inception Score and FID: the selector, and Keras's InceptionV3.
The original's IS: pose-gan gan/inception_score.py:24-52 (submodule a4aa9a3), called by test.py:125 at 8693ec4.

Two networks, chosen with `make_inception_scorer(kind)`:
- "2015" (default): the 2015 Inception graph the published IS (OpenAI) and FID (TTUR) values were computed
  with, 1008 classes; see dgan_tf.evaluation.inception2015.
- "keras": Keras's InceptionV3 (1000 ImageNet classes, other weights and preprocessing); its IS and FID are
  NOT comparable with published values, and reports say so through `scorer.label`.
Weights: the path given, else the Keras cache, else a verified download unless offline (dgan_tf.weights).
Random weights exist for tests and smoke runs only, through the explicit `weights="random"`.
"""

import numpy as np

from dgan_tf import weights
from dgan_tf.evaluation.inception_outputs import InceptionOutputs
from dgan_tf.images import check_images
from dgan_tf.options import INCEPTION_KINDS, PRETRAINED_WEIGHTS
from dgan_tf.weights import WeightsNotFoundError  # noqa: F401  (part of this module's API)
from dgan_tf.weights import load_weight_file

INPUT_SIZE = 299
NUM_CLASSES = 1000
POOL_DIM = 2048
WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + WEIGHTS_FILE
)
# The md5 Keras checks (keras/src/applications/inception_v3.py, include_top=True).
WEIGHTS_MD5 = "9a0d58056eeedaa3f26cb7ebd46da564"

DEFAULT_KIND = "2015"
KERAS_LABEL = "Keras InceptionV3 (1000 classes): not comparable with published values"
PATH_FLAGS = {"2015": "--inception-graph PATH", "keras": "--inception-weights PATH"}

KERAS_INCEPTION_V3 = weights.WeightFile(
    file_name=WEIGHTS_FILE, url=WEIGHTS_URL, file_hash=WEIGHTS_MD5,
    what="InceptionV3 ImageNet weights (Keras, include_top)", path_flag=PATH_FLAGS["keras"],
    alternatives="or use the 2015 graph with --inception 2015; or skip IS and FID with --no-inception.")


def inception_label(kind):
    """The report label of an Inception kind: whether its IS/FID compare with published values."""
    if kind not in INCEPTION_KINDS:
        raise ValueError(f"`kind` must be one of {INCEPTION_KINDS}. Received: kind={kind!r}")
    if kind == "keras":
        return KERAS_LABEL
    from dgan_tf.evaluation.inception2015 import LABEL
    return LABEL


def make_inception_scorer(kind=DEFAULT_KIND, weights_path=None, offline=False, batch_size=50, progress=False):
    """The IS/FID network of `kind` ("2015" or "keras"), with the same methods and a `label` for reports.

    weights_path: the 2015 graph's classify_image_graph_def.pb (--inception-graph) or Keras's .h5
    (--inception-weights); None looks in the Keras cache and downloads unless `offline` (or $DGAN_OFFLINE).
    Raises WeightsNotFoundError when the file can be neither found nor fetched.
    """
    if kind not in INCEPTION_KINDS:
        raise ValueError(f"`kind` must be one of {INCEPTION_KINDS}. Received: kind={kind!r}")
    if kind == "keras":
        return InceptionScorer(weights_path=weights_path, batch_size=batch_size, progress=progress, offline=offline)
    from dgan_tf.evaluation.inception2015 import Inception2015
    return Inception2015(graph_path=weights_path, offline=offline, batch_size=batch_size, progress=progress)


def default_weights_path():
    """Where Keras keeps the InceptionV3 (include_top) weights: <keras home>/models/<WEIGHTS_FILE>."""
    return weights.default_weights_path(WEIGHTS_FILE)


def resolve_weights_path(weights_path=None, offline=False):
    """The weight file to load: `weights_path` if given, else the Keras cache, else a verified download."""
    return weights.resolve_weights(KERAS_INCEPTION_V3, weights_path, offline=offline)


def build_inception(weights="imagenet", weights_path=None, offline=False):
    """InceptionV3 mapping (B, 299, 299, 3) in [-1, 1] to [softmax (B, 1000), pool features (B, 2048)]."""
    if weights not in PRETRAINED_WEIGHTS:
        raise ValueError(f"`weights` must be one of {PRETRAINED_WEIGHTS}. Received: weights={weights!r}")
    if weights == "random" and weights_path is not None:
        raise ValueError(f"`weights_path` is only used with weights='imagenet'. Received: weights_path={weights_path!r}")
    path = resolve_weights_path(weights_path, offline=offline) if weights == "imagenet" else None
    import keras  # after the path check, so a missing file fails fast
    base = keras.applications.InceptionV3(include_top=True, weights=None, input_shape=(INPUT_SIZE, INPUT_SIZE, 3))
    if path is not None:
        load_weight_file(base, KERAS_INCEPTION_V3, path)
    return keras.Model(base.input, [base.output, base.get_layer("avg_pool").output], name="inception_v3_scores")


def preprocess(images):
    """uint8 images of one batch -> (B, 299, 299, 3) float32 in [-1, 1]: bilinear resize, then x / 127.5 - 1.

    Bilinear without antialiasing (half-pixel centres); the order does not matter since both are linear.
    """
    from keras import ops

    def resize(batch):  # (B, H, W, 3) uint8 -> (B, 299, 299, 3) float32
        return ops.convert_to_numpy(
            ops.image.resize(batch.astype(np.float32), (INPUT_SIZE, INPUT_SIZE), interpolation="bilinear")
        )

    if all(image.shape == images[0].shape for image in images):
        resized = resize(np.stack(images))
    else:
        resized = np.concatenate([resize(image[None]) for image in images])
    return resized / 127.5 - 1.0


class InceptionScorer(InceptionOutputs):
    """Keras InceptionV3: batched forward passes giving IS softmax predictions and FID pool features at once.

    Not comparable with published IS/FID values (see `label`); `make_inception_scorer("2015")` is.
    """

    kind = "keras"
    label = KERAS_LABEL
    num_classes = NUM_CLASSES
    pool_dim = POOL_DIM

    def __init__(self, weights_path=None, batch_size=50, weights="imagenet", progress=False, offline=False):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.batch_size = int(batch_size)
        self.progress = bool(progress)
        self.model = build_inception(weights=weights, weights_path=weights_path, offline=offline)

    def predictions_and_features(self, images):
        """uint8 images (N, H, W, 3) or a list of (H, W, 3) -> softmax (N, 1000), pool features (N, 2048)."""
        images = check_images(images)
        starts = range(0, len(images), self.batch_size)
        if self.progress:
            from tqdm import tqdm
            starts = tqdm(starts, desc="InceptionV3", unit="batch")
        probs, features = [], []
        for start in starts:
            batch = preprocess(images[start:start + self.batch_size])  # (B, 299, 299, 3)
            batch_probs, batch_features = self.model.predict_on_batch(batch)
            probs.append(np.asarray(batch_probs, dtype=np.float64))  # (B, 1000)
            features.append(np.asarray(batch_features, dtype=np.float64))  # (B, 2048)
        return np.concatenate(probs), np.concatenate(features)

