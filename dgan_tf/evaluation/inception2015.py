"""The 2015 Inception graph (`classify_image_graph_def.pb`) as a TF2 function, for published-comparable IS and FID.

This is the network of OpenAI's Inception Score (openai/improved-gan, inception_score/model.py) and of
TTUR's FID (bioinf-jku/TTUR, fid.py), both read from `inception-2015-12-05.tgz`. As they do:
- images are fed to the graph's tensor 'ExpandDims:0' as float32 RGB in [0, 255], (N, H, W, 3), any
  H and W: the graph itself resizes them to 299x299 (its ResizeBilinear op) and scales them
  (its Sub and Mul ops), so that preprocessing is the graph's own, run by the same TensorFlow kernel;
- FID features are 'pool_3:0' (N, 1, 1, 2048) flattened to (N, 2048);
- IS predictions are softmax(pool_3 @ W) over 1008 classes, W being the second input of the graph's
  'softmax/logits/MatMul' (2048, 1008): the graph's softmax bias is NOT added, as in OpenAI's code.
OpenAI and TTUR patch the static batch size 1 of the imported graph to None; here the GraphDef's recorded
'_output_shapes' are dropped and the graph is imported with 'ExpandDims:0' mapped to a (None, None, None, 3)
input, so TF2's shape inference gives every tensor a free batch size ('pool_3/_reshape', hard-wired to
batch 1, is not on the path to the outputs and never runs).
The graph file: the path given (--inception-graph), else <keras home>/models/classify_image_graph_def.pb,
else extracted from the official archive, downloaded unless offline. No checksum of that archive is
published, so the download is checked only by the graph's structure (the tensors above, their shapes).
"""

import numpy as np

from dgan_tf import weights
from dgan_tf.evaluation.inception_outputs import InceptionOutputs
from dgan_tf.images import check_images
from dgan_tf.weights import WeightsNotFoundError  # noqa: F401  (part of this module's API)

GRAPH_FILE = "classify_image_graph_def.pb"
ARCHIVE_URL = "http://download.tensorflow.org/models/image/imagenet/inception-2015-12-05.tgz"
INPUT_TENSOR = "ExpandDims:0"  # float32 (N, H, W, 3) in [0, 255], before the graph's resize and scaling
POOL_TENSOR = "pool_3:0"  # (N, 1, 1, 2048)
SOFTMAX_MATMUL = "softmax/logits/MatMul"  # inputs: pool_3 reshaped (N, 2048), W (2048, 1008)
NUM_CLASSES = 1008
POOL_DIM = 2048
LABEL = "Inception 2015 graph (OpenAI IS / TTUR FID), comparable with published values"

GRAPH = weights.WeightFile(
    file_name=GRAPH_FILE, url=ARCHIVE_URL, archive_member=GRAPH_FILE, file_hash=None,
    what="Inception 2015 graph (classify_image_graph_def.pb, for IS/FID)", path_flag="--inception-graph PATH",
    python_argument="graph_path",
    alternatives="or use Keras's InceptionV3 with --inception keras (not comparable with published values); "
                 "or skip IS and FID with --no-inception.")


def resolve_graph_path(graph_path=None, offline=False):
    """The .pb to load: `graph_path` if given, else the Keras cache, else extracted from a download.

    offline=True (or $DGAN_OFFLINE) forbids the download; raises WeightsNotFoundError when nothing is found.
    """
    return weights.resolve_weights(GRAPH, graph_path, offline=offline)


def read_graph_def(path):
    """The GraphDef in `path`, with recorded '_output_shapes' dropped; raises ValueError if it is not the graph."""
    import tensorflow as tf

    graph_def = tf.compat.v1.GraphDef()
    try:
        with open(path, "rb") as file:
            graph_def.ParseFromString(file.read())
    except Exception as error:  # a truncated or non-GraphDef file: name it
        raise ValueError(
            f"Could not read a TensorFlow GraphDef from {path} (expected {GRAPH_FILE}): {error}") from error
    names = {node.name for node in graph_def.node}
    missing = [name for name in (INPUT_TENSOR.split(":")[0], POOL_TENSOR.split(":")[0], SOFTMAX_MATMUL)
               if name not in names]
    if missing:
        raise ValueError(f"{path} is not the 2015 Inception graph ({GRAPH_FILE}): it has no node {missing}.")
    for node in graph_def.node:
        if "_output_shapes" in node.attr:  # shapes recorded with batch 1 would pin the batch size
            del node.attr["_output_shapes"]
    return graph_def


def describe_preprocessing(graph_def, start=INPUT_TENSOR.split(":")[0], max_ops=8):
    """The chain of ops from 'ExpandDims' to the first convolution, with their constants, as strings.

    On the real graph this shows what the graph does to an image before the network (expected from
    TensorFlow's retrain.py: a bilinear resize to 299x299, then (x - 128) / 128), e.g.
    ['ResizeBilinear(size=[299, 299], align_corners=False, half_pixel_centers=False)', 'Sub(y=128.0)', ...].
    """
    import tensorflow as tf

    nodes = {node.name: node for node in graph_def.node}
    consumers = {}
    for node in graph_def.node:
        for name in node.input:
            consumers.setdefault(name.lstrip("^").split(":")[0], []).append(node)

    def constant(name):  # a small constant input's value, else None
        node = nodes.get(name.lstrip("^").split(":")[0])
        if node is None or node.op != "Const":
            return None
        value = tf.make_ndarray(node.attr["value"].tensor)
        return value.tolist() if value.size <= 4 else None

    steps, current = [], start
    for _ in range(max_ops):
        following = consumers.get(current, [])
        if len(following) != 1:
            break
        node = following[0]
        if node.op.startswith("Conv"):
            steps.append(node.op)
            break
        resize = node.op.startswith("Resize")
        arguments = [f"{'size' if resize else 'y'}={constant(name)}" for name in node.input[1:]
                     if constant(name) is not None]
        for attr in ("align_corners", "half_pixel_centers") if resize else ():
            if attr in node.attr:
                arguments.append(f"{attr}={node.attr[attr].b}")
            else:
                arguments.append(f"{attr}=False (attr absent: default)")
        steps.append(f"{node.op}({', '.join(arguments)})")
        current = node.name
    return steps


def _wrap(graph_def, path):
    """A TF2 function images (N, H, W, 3) float32 [0, 255] -> (softmax (N, 1008), pool_3 features (N, 2048))."""
    import tensorflow as tf

    def imported(images):
        pool3, matmul = tf.graph_util.import_graph_def(
            graph_def, input_map={INPUT_TENSOR: images}, return_elements=[POOL_TENSOR, SOFTMAX_MATMUL],
            name="inception_2015")
        softmax_weights = matmul.inputs[1]  # (2048, 1008)
        if pool3.shape[-1] != POOL_DIM or tuple(softmax_weights.shape) != (POOL_DIM, NUM_CLASSES):
            raise ValueError(
                f"{path} is not the 2015 Inception graph: pool_3 has shape {pool3.shape} and the softmax weights "
                f"{softmax_weights.shape}; expected (N, 1, 1, {POOL_DIM}) and ({POOL_DIM}, {NUM_CLASSES}).")
        features = tf.reshape(pool3, [-1, POOL_DIM])  # (N, 2048)
        logits = tf.matmul(features, softmax_weights)  # (N, 1008): no bias, as OpenAI's model.py
        return tf.nn.softmax(logits), features

    wrapped = tf.compat.v1.wrap_function(imported, [tf.TensorSpec([None, None, None, 3], tf.float32)])
    # Keep only what the outputs need (the JPEG decoder and the graph's own softmax head are dropped).
    return wrapped.prune(feeds=wrapped.inputs, fetches=wrapped.outputs)


class Inception2015(InceptionOutputs):
    """The 2015 Inception graph: IS softmax predictions (N, 1008) and FID pool_3 features (N, 2048).

    Same methods as `dgan_tf.evaluation.inception.InceptionScorer`, so evaluation can use either.
    graph_path: classify_image_graph_def.pb (--inception-graph); None: the Keras cache, else a download
    unless `offline` (or $DGAN_OFFLINE). Images of one batch are fed together when they share a size
    (the graph resizes each to 299x299 itself); `batch_size` bounds a batch.
    """

    kind = "2015"
    label = LABEL
    num_classes = NUM_CLASSES
    pool_dim = POOL_DIM

    def __init__(self, graph_path=None, offline=False, batch_size=50, progress=False):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.batch_size = int(batch_size)
        self.progress = bool(progress)
        self.graph_path = resolve_graph_path(graph_path, offline=offline)
        graph_def = read_graph_def(self.graph_path)
        self.preprocessing = describe_preprocessing(graph_def)
        self._function = _wrap(graph_def, self.graph_path)

    def _batches(self, images):
        """Consecutive runs of same-size images, at most batch_size long: (start, stop) pairs."""
        start = 0
        while start < len(images):
            stop = start + 1
            while stop < len(images) and stop - start < self.batch_size and images[stop].shape == images[start].shape:
                stop += 1
            yield start, stop
            start = stop

    def predictions_and_features(self, images):
        """uint8 images (N, H, W, 3) or a list of (H, W, 3) -> softmax (N, 1008), pool_3 features (N, 2048)."""
        import tensorflow as tf

        images = check_images(images)
        batches = list(self._batches(images))
        if self.progress:
            from tqdm import tqdm
            batches = tqdm(batches, desc="Inception 2015", unit="batch")
        probs, features = [], []
        for start, stop in batches:
            batch = tf.constant(np.stack(images[start:stop]).astype(np.float32))  # (B, H, W, 3) in [0, 255]
            batch_probs, batch_features = self._function(batch)
            probs.append(np.asarray(batch_probs, dtype=np.float64))  # (B, 1008)
            features.append(np.asarray(batch_features, dtype=np.float64))  # (B, 2048)
        return np.concatenate(probs), np.concatenate(features)

