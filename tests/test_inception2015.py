"""Tests of dgan_tf.evaluation.inception2015 on a small GraphDef written here with the real graph's tensor names.

The fake graph keeps what the loader relies on: 'DecodeJpeg/contents' -> 'DecodeJpeg' -> 'Cast' ->
'ExpandDims' (static batch 1), the graph's own ResizeBilinear (legacy, attrs absent as in a 2015 graph),
'Sub' 128 and 'Mul' 1/128, a network stand-in (1x1 convolution + ReLU) ending in the AvgPool 'pool_3'
(N, 1, 1, 2048), 'pool_3/_reshape' hard-wired to batch 1, 'softmax/logits/MatMul' with weights
(2048, 1008), a bias and 'softmax'; it is saved with '_output_shapes' (batch 1), as a frozen 2015 graph may be.
"""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from dgan_tf import weights
from dgan_tf.evaluation import inception, inception2015, metrics
from dgan_tf.evaluation.inception2015 import GRAPH_FILE, Inception2015, WeightsNotFoundError

SIZE = 8  # the fake graph resizes to SIZE x SIZE (the real one to 299 x 299)


def write_fake_graph(path, seed=0, with_pool=True):
    rng = np.random.default_rng(seed)
    params = dict(kernel=rng.normal(0, 0.5, (3, 2048)).astype(np.float32),
                  bias=rng.normal(0, 0.1, 2048).astype(np.float32),
                  w=rng.normal(0, 0.05, (2048, 1008)).astype(np.float32),
                  b=rng.normal(0, 1, 1008).astype(np.float32))
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        contents = v1.placeholder(tf.string, [], name="DecodeJpeg/contents")
        decoded = tf.io.decode_jpeg(contents, channels=3, name="DecodeJpeg")
        expand = tf.expand_dims(tf.cast(decoded, tf.float32, name="Cast"), 0, name="ExpandDims")  # (1, ?, ?, 3)
        resized = tf.raw_ops.ResizeBilinear(images=expand, size=tf.constant([SIZE, SIZE], name="ResizeBilinear/size"),
                                            name="ResizeBilinear")
        scaled = tf.multiply(tf.subtract(resized, tf.constant(128.0, name="Sub/y"), name="Sub"),
                             tf.constant(1 / 128, name="Mul/y"), name="Mul")
        conv = tf.nn.conv2d(scaled, tf.constant(params["kernel"][None, None]), 1, "VALID", name="conv/Conv2D")
        relu = tf.nn.relu(tf.nn.bias_add(conv, params["bias"]), name="conv")
        pool = tf.nn.avg_pool2d(relu, SIZE, 1, "VALID", name="pool_3" if with_pool else "pool_x")  # (N, 1, 1, 2048)
        reshape = tf.reshape(pool, [1, 2048], name="pool_3/_reshape")  # batch 1, as in the real graph
        matmul = tf.matmul(reshape, tf.constant(params["w"], name="softmax/weights"), name="softmax/logits/MatMul")
        logits = tf.nn.bias_add(matmul, tf.constant(params["b"], name="softmax/biases"), name="softmax/logits")
        tf.nn.softmax(logits, name="softmax")
    graph_def = graph.as_graph_def(add_shapes=True)
    for node in graph_def.node:
        if node.op == "ResizeBilinear":  # a 2015 graph predates these attributes
            del node.attr["align_corners"]
            del node.attr["half_pixel_centers"]
    path.write_bytes(graph_def.SerializeToString())
    return params


def legacy_resize_bilinear(image, size):
    """TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False): source = target * in / out."""
    height, width = image.shape[:2]

    def axis(n_in, n_out):
        source = np.arange(n_out) * (n_in / n_out)
        low = np.floor(source).astype(int)
        return low, np.minimum(low + 1, n_in - 1), source - low

    y0, y1, dy = axis(height, size)
    x0, x1, dx = axis(width, size)
    top = image[y0][:, x0] * (1 - dx)[None, :, None] + image[y0][:, x1] * dx[None, :, None]
    bottom = image[y1][:, x0] * (1 - dx)[None, :, None] + image[y1][:, x1] * dx[None, :, None]
    return top * (1 - dy)[:, None, None] + bottom * dy[:, None, None]


def reference(images, params, bias=False):
    """What the fake graph and OpenAI's softmax compute, in numpy: (probs (N, 1008), features (N, 2048))."""
    features = []
    for image in images:
        x = (legacy_resize_bilinear(image.astype(np.float64), SIZE) - 128.0) / 128.0  # (SIZE, SIZE, 3)
        hidden = np.maximum(x @ params["kernel"] + params["bias"], 0.0)  # (SIZE, SIZE, 2048)
        features.append(hidden.mean(axis=(0, 1)))
    features = np.stack(features)  # (N, 2048)
    logits = features @ params["w"] + (params["b"] if bias else 0.0)  # (N, 1008)
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True), features


@pytest.fixture(scope="module")
def fake_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("graph") / GRAPH_FILE
    return path, write_fake_graph(path)


@pytest.fixture
def no_download(monkeypatch):
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail(f"no download may happen: {a} {k}"))


@pytest.mark.parametrize("batch_size", [1, 3])
def test_loader_matches_the_graph_in_numpy(fake_graph, rng, batch_size):
    path, params = fake_graph
    scorer = Inception2015(graph_path=path, batch_size=batch_size)
    images = rng.integers(0, 256, size=(5, 6, 4, 3), dtype=np.uint8)
    probs, features = scorer.predictions_and_features(images)
    assert probs.shape == (5, 1008) and features.shape == (5, 2048)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    expected_probs, expected_features = reference(images, params)
    np.testing.assert_allclose(features, expected_features, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(probs, expected_probs, rtol=1e-3, atol=1e-7)
    with_bias, _ = reference(images, params, bias=True)
    assert not np.allclose(probs, with_bias, rtol=1e-2), "OpenAI's softmax leaves out the graph's bias"
    np.testing.assert_array_equal(scorer.predictions(images), probs)
    np.testing.assert_array_equal(scorer.pool_features(images), features)


def test_mixed_sizes_and_the_interface_of_the_keras_scorer(fake_graph, rng):
    path, params = fake_graph
    scorer = inception.make_inception_scorer("2015", weights_path=path, batch_size=2)
    assert isinstance(scorer, Inception2015) and scorer.kind == "2015"
    assert "comparable with published values" in scorer.label and "not" not in scorer.label
    images = [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in [(6, 4, 3), (6, 4, 3), (5, 7, 3)]]
    probs, features = scorer.predictions_and_features(images)
    expected_probs, expected_features = reference(images, params)
    np.testing.assert_allclose(features, expected_features, rtol=1e-4, atol=1e-5)
    for name in ("predictions_and_features", "predictions", "pool_features", "label", "kind"):
        assert hasattr(inception.InceptionScorer, name)
    with pytest.raises(ValueError, match=r"images\[1\]"):
        scorer.predictions([images[0], images[0].astype(np.float32)])
    with pytest.raises(ValueError, match="batch_size"):
        Inception2015(graph_path=path, batch_size=0)


def test_preprocessing_is_described_from_the_graph(fake_graph):
    path, _ = fake_graph
    assert Inception2015(graph_path=path).preprocessing == [
        f"ResizeBilinear(size=[{SIZE}, {SIZE}], align_corners=False (attr absent: default), "
        "half_pixel_centers=False (attr absent: default))",
        "Sub(y=128.0)", "Mul(y=0.0078125)", "Conv2D"]


def test_inception_score_split_rule_is_openais(fake_graph, rng):
    path, _ = fake_graph
    probs = Inception2015(graph_path=path).predictions(rng.integers(0, 256, size=(23, 6, 4, 3), dtype=np.uint8))
    scores = []  # openai/improved-gan inception_score/model.py, get_inception_score
    for i in range(10):
        part = probs[(i * probs.shape[0] // 10):((i + 1) * probs.shape[0] // 10), :]
        kl = part * (np.log(part) - np.log(np.expand_dims(np.mean(part, 0), 0)))
        scores.append(np.exp(np.mean(np.sum(kl, 1))))
    np.testing.assert_allclose(metrics.inception_score_from_predictions(probs, splits=10),
                               (np.mean(scores), np.std(scores)), rtol=1e-10)


def test_not_the_graph_is_named(tmp_path):
    wrong = tmp_path / "wrong.pb"
    write_fake_graph(wrong, with_pool=False)
    with pytest.raises(ValueError, match=r"wrong.pb is not the 2015 Inception graph.*pool_3"):
        Inception2015(graph_path=wrong)
    garbage = tmp_path / "garbage.pb"
    garbage.write_bytes(b"\xff\x00 not a protobuf")
    with pytest.raises(ValueError, match="garbage.pb"):
        Inception2015(graph_path=garbage)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_missing_graph_offline_names_file_folder_url_and_flags(tmp_path, monkeypatch, no_download, how):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    if how == "environment":
        monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    else:
        monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    with pytest.raises(WeightsNotFoundError) as caught:
        inception.make_inception_scorer("2015", offline=how == "argument")
    message = str(caught.value)
    for part in (GRAPH_FILE, str(tmp_path / "models"), inception2015.ARCHIVE_URL, "--inception-graph PATH",
                 "--offline", "DGAN_OFFLINE", "--inception keras"):
        assert part in message, part
    with pytest.raises(WeightsNotFoundError, match="nowhere.pb"):
        Inception2015(graph_path=tmp_path / "nowhere.pb")


def test_graph_is_downloaded_from_the_archive_into_the_cache(fake_graph, tmp_path, monkeypatch, rng):
    import tarfile

    path, params = fake_graph
    archive = tmp_path / "inception-2015-12-05.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(path, arcname=GRAPH_FILE)
    monkeypatch.setattr(inception2015, "GRAPH", dataclasses.replace(inception2015.GRAPH, url=archive.as_uri()))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    scorer = Inception2015()
    assert scorer.graph_path == str(tmp_path / "home" / "models" / GRAPH_FILE)
    images = rng.integers(0, 256, size=(2, 6, 4, 3), dtype=np.uint8)
    np.testing.assert_allclose(scorer.pool_features(images), reference(images, params)[1], rtol=1e-4, atol=1e-5)


def test_selector_and_labels(tmp_path, monkeypatch, no_download):
    assert inception.DEFAULT_KIND == "2015"
    assert inception.inception_label("2015") == inception2015.LABEL
    assert "not comparable with published values" in inception.inception_label("keras")
    assert inception.InceptionScorer.label == inception.inception_label("keras")
    with pytest.raises(ValueError, match="kind='v3'"):
        inception.make_inception_scorer("v3")
    with pytest.raises(ValueError, match="kind='v3'"):
        inception.inception_label("v3")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match="--inception-weights PATH"):
        inception.make_inception_scorer("keras", offline=True)
