"""DS (SSD300 person score): architecture against the original's Caffe deploy.prototxt, prior boxes,
decoding, the DetectionOutput person score, preprocessing, weight files (ssd_keras .hdf5, .caffemodel)."""

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from dgan_tf.evaluation import ssd  # noqa: E402
from dgan_tf.weights import WeightsNotFoundError  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PROTOTXT = SHARED / "reference" / "ssd300_voc0712_deploy.prototxt"


# ------------------------------------------------------------------------------- prototxt (text format)

def parse_prototxt(text):
    """Protobuf text format -> nested dicts of lists (every field repeated)."""
    text = re.sub(r"#[^\n]*", "", text)
    tokens = re.findall(r'"[^"]*"|[{}:]|[^\s{}:"]+', text)

    def value(token):
        if token.startswith('"'):
            return token[1:-1]
        if token in ("true", "false"):
            return token == "true"
        try:
            return int(token)
        except ValueError:
            try:
                return float(token)
            except ValueError:
                return token  # an enum

    def block(i):
        message = {}
        while i < len(tokens) and tokens[i] != "}":
            key = tokens[i]
            i += 1
            if tokens[i] == ":":
                i += 1
            if tokens[i] == "{":
                item, i = block(i + 1)
                i += 1  # the closing brace
            else:
                item, i = value(tokens[i]), i + 1
            message.setdefault(key, []).append(item)
        return message, i

    return block(0)[0]


def first(message, key, default=None):
    return message.get(key, [default])[0]


@pytest.fixture(scope="module")
def deploy():
    if not PROTOTXT.exists():
        pytest.skip(f"reference material not found: {PROTOTXT} (the ../shared folder beside the checkout)")
    return parse_prototxt(PROTOTXT.read_text())


def caffe_walk(net):
    """Blob shapes (C, H, W) and learnable parameter counts of each layer, as Caffe computes them."""
    dims = net["input_shape"][0]["dim"]
    shapes = {net["input"][0]: tuple(dims[1:])}
    params = {}
    for layer in net["layer"]:
        kind, name = layer["type"][0], layer["name"][0]
        bottom = shapes.get(first(layer, "bottom"))
        top = first(layer, "top")
        if kind == "Convolution":
            p = layer["convolution_param"][0]
            k, n = first(p, "kernel_size"), first(p, "num_output")
            s, pad, d, g = first(p, "stride", 1), first(p, "pad", 0), first(p, "dilation", 1), first(p, "group", 1)
            c, h, w = bottom
            side = lambda x: (x + 2 * pad - (d * (k - 1) + 1)) // s + 1  # noqa: E731
            shapes[top] = (n, side(h), side(w))
            params[name] = n * (c // g) * k * k + (n if first(p, "bias_term", True) else 0)
        elif kind == "Pooling":
            p = layer["pooling_param"][0]
            k, s, pad = first(p, "kernel_size"), first(p, "stride", 1), first(p, "pad", 0)
            c, h, w = bottom

            def side(x):
                out = math.ceil((x + 2 * pad - k) / s) + 1  # Caffe pools with ceil
                return out - 1 if pad and (out - 1) * s >= x + pad else out

            shapes[top] = (c, side(h), side(w))
        elif kind in ("ReLU", "Normalize"):
            shapes[top] = bottom
            if kind == "Normalize":
                params[name] = 1 if first(layer["norm_param"][0], "channel_shared", True) else bottom[0]
    return shapes, params


# ----------------------------------------------------------------------------------- (a) architecture

def test_parameter_count_and_shapes_equal_the_caffe_deploy_prototxt(deploy):
    model = ssd.build_ssd300()
    shapes, params = caffe_walk(deploy)
    assert model.count_params() == sum(params.values()) == 26_285_486
    conv_layers = [layer for layer in deploy["layer"] if layer["type"][0] in ("Convolution", "Normalize")]
    assert {layer.name for layer in model.layers if layer.weights} == {layer["name"][0] for layer in conv_layers}
    for layer in conv_layers:
        name = layer["name"][0]
        keras_layer = model.get_layer(name)
        assert sum(int(np.prod(w.shape)) for w in keras_layer.weights) == params[name], name
        c, h, w = shapes[layer["top"][0]]
        assert tuple(keras_layer.output.shape[1:]) == (h, w, c), name
        if layer["type"][0] == "Convolution":
            p = layer["convolution_param"][0]
            k = first(p, "kernel_size")
            assert tuple(keras_layer.kernel.shape) == (k, k, shapes[layer["bottom"][0]][0], first(p, "num_output"))
            assert keras_layer.strides == (first(p, "stride", 1),) * 2, name
            assert keras_layer.dilation_rate == (first(p, "dilation", 1),) * 2, name
        else:
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras_layer.gamma), 20.0)
    for index in range(1, 6):  # Caffe pools with ceil (75 -> 38)
        c, h, w = shapes[f"pool{index}"]
        assert tuple(model.get_layer(f"pool{index}").output.shape[1:]) == (h, w, c)


def test_prior_and_detection_parameters_are_the_prototxt_ones(deploy):
    shapes, _ = caffe_walk(deploy)
    layers = {layer["name"][0]: layer for layer in deploy["layer"]}
    priors = [layer for layer in deploy["layer"] if layer["type"][0] == "PriorBox"]
    assert [layer["bottom"][0] for layer in priors] == [spec.source for spec in ssd.PRIOR_SPECS[ssd.CAFFE]]
    assert layers["mbox_loc"]["bottom"] == [
        f"{spec.source}_mbox_loc_flat" for spec in ssd.PRIOR_SPECS[ssd.CAFFE]]
    for layer, spec in zip(priors, ssd.PRIOR_SPECS[ssd.CAFFE]):
        p = layer["prior_box_param"][0]
        assert (p["min_size"], p["max_size"]) == ([spec.min_size], [spec.max_size])
        assert tuple(p["aspect_ratio"]) == spec.aspect_ratios
        assert (first(p, "flip"), first(p, "clip"), first(p, "offset")) == (
            ssd.PRIOR_FLIP, ssd.PRIOR_CLIP[ssd.CAFFE], ssd.PRIOR_OFFSET)
        assert first(p, "step") == spec.step and tuple(p["variance"]) == ssd.VARIANCES
        assert shapes[spec.source][1:] == (spec.map_size, spec.map_size)
        heads = layers[f"{spec.source}_mbox_loc"]["convolution_param"][0]
        assert first(heads, "num_output") == 4 * ssd.num_priors_per_location(spec)
    p = layers["detection_out"]["detection_output_param"][0]
    nms = p["nms_param"][0]
    assert (first(p, "num_classes"), first(p, "background_label_id"), first(p, "share_location")) == (
        ssd.NUM_CLASSES, ssd.BACKGROUND_CLASS, True)
    assert (first(p, "code_type"), first(p, "confidence_threshold"), first(p, "keep_top_k")) == (
        "CENTER_SIZE", ssd.CONFIDENCE_THRESHOLD, ssd.KEEP_TOP_K)
    assert (first(nms, "nms_threshold"), first(nms, "top_k")) == (ssd.NMS_THRESHOLD, ssd.TOP_K)


def test_normalize_layer_is_an_l2_norm_over_channels_times_a_learnable_scale():
    x = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)
    layer = ssd.Normalize(20.0)
    out = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(out, x / np.sqrt((x ** 2).sum(-1, keepdims=True) + 1e-10) * 20, rtol=1e-5)
    assert [w.shape for w in layer.trainable_weights] == [(5,)]
    clone = ssd.Normalize.from_config(layer.get_config())
    assert (clone.scale, clone.eps) == (20.0, 1e-10)
    assert keras.saving.get_registered_object("dgan_tf>Normalize") is ssd.Normalize


# ------------------------------------------------------------------------------------ (b) prior boxes

def test_prior_boxes_match_a_hand_computation():
    priors = ssd.prior_boxes()
    assert priors.shape == (8732, 4) and priors.dtype == np.float32
    s2 = math.sqrt(2.0)
    half = np.array([[15, 15], [math.sqrt(30 * 60) / 2] * 2, [15 * s2, 15 / s2], [15 / s2, 15 * s2]])
    centre = np.array([4.0, 4.0])  # conv4_3 cell (0, 0): (0 + 0.5) * step 8
    np.testing.assert_allclose(priors[:4], np.hstack([centre - half, centre + half]) / 300, rtol=1e-6)
    centre = np.array([12.0, 4.0])  # cell (row 0, column 1)
    np.testing.assert_allclose(priors[4:8], np.hstack([centre - half, centre + half]) / 300, rtol=1e-6)
    last = np.array([[150 - 132 / s2, 150 - 132 * s2, 150 + 132 / s2, 150 + 132 * s2]]) / 300  # conv9_2, ratio 1/2
    np.testing.assert_allclose(priors[-1:], last, rtol=1e-6)
    assert priors.min() < 0 and priors.max() > 1  # clip: false in the prototxt
    clipped = ssd.prior_boxes(clip=True)
    assert clipped.min() >= 0 and clipped.max() <= 1
    np.testing.assert_allclose(clipped[0], [0, 0, 19 / 300, 19 / 300], rtol=1e-6)
    keras_priors = ssd.prior_boxes(ssd.SSD_KERAS)
    assert keras_priors.shape == (7308, 4) and keras_priors.min() >= 0 and keras_priors.max() <= 1


# ---------------------------------------------------------------------------------------- (c) decoding

def test_decoding_zero_offsets_gives_the_priors_and_a_known_offset_a_known_box():
    priors = ssd.prior_boxes()
    np.testing.assert_allclose(ssd.decode_boxes(np.zeros((2, 8732, 4)), priors)[1], priors, atol=1e-6)
    prior = np.array([[0.1, 0.2, 0.3, 0.6]])  # centre (0.2, 0.4), size (0.2, 0.4)
    loc = np.array([[1.0, -1.0, math.log(2) / 0.2, 0.0]])
    # centre x 0.2 + 0.1 * 1 * 0.2, y 0.4 - 0.1 * 0.4; width 0.2 * 2, height 0.4
    np.testing.assert_allclose(ssd.decode_boxes(loc, prior), [[0.02, 0.16, 0.42, 0.56]], atol=1e-6)


# -------------------------------------------------------------------------------------- (d) person score

def disjoint_priors(n):
    x = np.arange(n) * 0.003
    return np.stack([x, np.zeros(n), x + 0.002, np.full(n, 0.1)], axis=1).astype(np.float32)


def person_case(others, person=0.5, other_class=7, same_box=False):
    """conf (P, 21): `others` boxes of another class at 0.9, one person box at `person`."""
    n = max(others, 1) + 1
    priors = np.tile([[0.1, 0.1, 0.5, 0.5]], (n, 1)).astype(np.float32) if same_box else disjoint_priors(n)
    conf = np.zeros((n, 21), np.float32)
    conf[:, 0] = 1.0
    conf[:others, other_class] = 0.9
    conf[-1, ssd.PERSON_CLASS] = person
    return np.zeros((n, 4), np.float32), conf, priors


def reference_person_score(loc, conf, priors, **kwargs):
    rows = ssd.detection_output(loc, conf, priors, **kwargs)
    person = rows[rows[:, 0] == ssd.PERSON_CLASS, 1]
    return float(person.max()) if len(person) else 0.0


def test_person_score_is_the_best_person_confidence_or_zero():
    loc, conf, priors = np.zeros((4, 4), np.float32), np.zeros((4, 21), np.float32), disjoint_priors(4)
    conf[:, 0] = 1.0
    conf[2, 15], conf[0, 15], conf[1, 14] = 0.7, 0.3, 0.95
    assert ssd.person_score(loc, conf, priors) == pytest.approx(0.7)
    rows = ssd.detection_output(loc, conf, priors)
    assert rows[:, 0].tolist() == [14, 15, 15] and rows[1, 1] == pytest.approx(0.7)
    conf[:, 15] = 0.01  # the threshold rule is "> 0.01"
    assert ssd.person_score(loc, conf, priors) == 0.0 and reference_person_score(loc, conf, priors) == 0.0
    conf[3, 15] = 0.0101
    assert ssd.person_score(loc, conf, priors) == pytest.approx(0.0101)
    scores = ssd.person_scores(np.zeros((2, 4, 4)), np.stack([conf, conf * 0]), priors)
    assert scores.tolist() == pytest.approx([0.0101, 0.0])


@pytest.mark.parametrize("others, same_box, expected", [
    (199, False, 0.5),  # rank 199 of the 200 kept
    (200, False, 0.0),  # 200 better detections of another class: keep_top_k drops the person
    (300, True, 0.5),  # the same 300 boxes: NMS keeps one of them
])
def test_keep_top_k_and_nms_decide_whether_the_person_survives(others, same_box, expected):
    loc, conf, priors = person_case(others, same_box=same_box)
    assert ssd.person_score(loc, conf, priors) == pytest.approx(expected)
    assert reference_person_score(loc, conf, priors) == pytest.approx(expected)


def test_top_k_caps_the_candidates_per_class():
    loc, conf, priors = person_case(500)  # 500 disjoint boxes of class 7, only the best 400 are candidates
    assert ssd.person_score(loc, conf, priors, keep_top_k=450) == pytest.approx(0.5)
    assert ssd.person_score(loc, conf, priors, keep_top_k=450, top_k=-1) == 0.0


def test_fast_person_score_equals_the_full_detection_output():
    rng = np.random.default_rng(7)
    # 120 priors x 20 classes: more candidates than keep_top_k=200, so every cut-off is exercised.
    priors = np.sort(rng.uniform(0, 1, (120, 2, 2)), axis=1).reshape(120, 4)[:, [0, 2, 1, 3]].astype(np.float32)
    for trial in range(3):
        logits = rng.normal(size=(120, 21)) * rng.uniform(1, 4)
        logits[:, 15] += rng.uniform(-4, 1)
        conf = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32)
        loc = rng.normal(size=(120, 4)).astype(np.float32)
        for keep_top_k in (200, 30, 5):
            fast = ssd.person_score(loc, conf, priors, keep_top_k=keep_top_k)
            assert fast == reference_person_score(loc, conf, priors, keep_top_k=keep_top_k), (trial, keep_top_k)


# ------------------------------------------------------------------------------------- preprocessing

def test_preprocessing_is_the_caffe_transformer():
    rng = np.random.default_rng(3)
    square = rng.integers(0, 256, (300, 300, 3), dtype=np.uint8)  # 300x300: no resize
    expected = square[..., ::-1].astype(np.float32) - np.array([104, 117, 123], np.float32)
    np.testing.assert_allclose(ssd.preprocess(square), expected, atol=1e-4)
    constant = ssd.preprocess(np.full((128, 64, 3), 9, np.uint8))  # resized: still constant
    np.testing.assert_allclose(constant, np.broadcast_to(9.0 - np.array([104, 117, 123]), (300, 300, 3)), atol=1e-4)
    transform = pytest.importorskip("skimage.transform")
    image = rng.uniform(0.2, 0.9, (128, 64, 3)).astype(np.float32)
    low, high = image.min(), image.max()
    reference = transform.resize((image - low) / (high - low), (300, 300), order=1, mode="constant",
                                 anti_aliasing=False) * (high - low) + low
    np.testing.assert_allclose(ssd.caffe_resize(image), reference, atol=1e-5)
    assert ssd.caffe_resize(image)[0, 0].max() < image[0, 0].max()  # the edge blends with the image minimum


# ------------------------------------------------------------------------- (e) random weights, forward

@pytest.fixture(scope="module")
def random_run():
    keras.utils.set_random_seed(0)
    scorer = ssd.SSDScorer(weights="random", batch_size=2)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (128, 64, 3), dtype=np.uint8), rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)]
    loc, conf = scorer.predict(images)
    return scorer, images, loc, conf


def test_random_weights_forward_shapes_and_scores(random_run):
    scorer, images, loc, conf = random_run
    assert loc.shape == (2, 8732, 4) and conf.shape == (2, 8732, 21)
    np.testing.assert_allclose(conf.sum(-1), 1.0, atol=1e-5)
    scores = ssd.person_scores(loc, conf, scorer.priors)
    assert scores.shape == (2,) and np.all((scores >= 0) & (scores <= 1))
    assert scorer.detection_score(images) == pytest.approx(scores.mean(), abs=1e-6)
    assert "random weights" in scorer.description
    with pytest.raises(ValueError, match=r"images\[1\]"):
        scorer.predict([images[0], images[1].astype(np.float32)])


# -------------------------------------------------------------------------------- (f) weight files

def write_ssd_keras_h5(path, model, override=(), only=None, nested=False):
    """A Keras 1 weight file as ssd_keras saved weights_SSD300.hdf5 (nested=True: Keras 2 names)."""
    import h5py

    override = dict(override)
    keep = [layer for layer in model.layers if only is None or layer.name in only]
    with h5py.File(path, "w") as handle:
        handle.attrs["layer_names"] = [layer.name.encode() for layer in keep]
        for layer in keep:
            group = handle.create_group(layer.name)
            arrays = override.get(layer.name) or layer.get_weights()
            kinds = ["gamma"] if isinstance(layer, ssd.Normalize) else ["kernel", "bias"][:len(arrays)]
            legacy = {"kernel": "W", "bias": "b", "gamma": "gamma"}
            names = [f"{layer.name}/{k}:0" if nested else f"{layer.name}_{legacy[k]}:0" for k in kinds][:len(arrays)]
            group.attrs["weight_names"] = [n.encode() for n in names]
            for name, array in zip(names, arrays):
                group.create_dataset(name, data=np.asarray(array, np.float32))


def test_ssd_keras_h5_round_trip_gives_equal_outputs(random_run, tmp_path):
    scorer, images, loc, conf = random_run
    path = tmp_path / ssd.WEIGHTS_FILE
    write_ssd_keras_h5(path, scorer.model)
    loaded = ssd.SSDScorer(weights_path=path)
    assert loaded.arch == ssd.CAFFE and loaded.weights_path == str(path)
    loc2, conf2 = loaded.predict(images[:1])
    np.testing.assert_allclose(loc2, loc[:1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(conf2, conf[:1], rtol=1e-5, atol=1e-6)


def test_weight_file_errors_name_the_layer_and_the_file(random_run, tmp_path):
    scorer = random_run[0]
    partial = tmp_path / "partial.hdf5"
    write_ssd_keras_h5(partial, scorer.model, only={"conv9_2", "conv9_2_mbox_loc"}, nested=True)
    with pytest.raises(ssd.SSDWeightsError, match=r"partial\.hdf5 has no weights for layer 'conv1_1'"):
        ssd.SSDScorer(weights_path=partial)
    wrong = tmp_path / "wrong.hdf5"
    write_ssd_keras_h5(wrong, scorer.model, override={
        "conv4_3_norm_mbox_loc": [np.zeros((3, 3, 512, 12)), np.zeros(12)]})  # ssd_keras: 3 priors
    with pytest.raises(ssd.SSDWeightsError, match=r"wrong\.hdf5: layer 'conv4_3_norm_mbox_loc' .*\(3, 3, 512, 12\)"):
        ssd.SSDScorer(weights_path=wrong)
    neither = tmp_path / "neither.hdf5"
    write_ssd_keras_h5(neither, scorer.model, only={"conv1_1"})
    with pytest.raises(ssd.SSDWeightsError, match="neither.hdf5 holds neither SSD300"):
        ssd.SSDScorer(weights_path=neither)


def test_ssd_keras_architecture_file_is_recognised(tmp_path):
    keras.utils.set_random_seed(1)
    model = ssd.build_ssd300(arch=ssd.SSD_KERAS)
    assert model.output_shape == [(None, 7308, 4), (None, 7308, 21)]
    assert model.get_layer("conv4_3_norm_mbox_loc").kernel.shape == (3, 3, 512, 12)
    path = tmp_path / "ssd_keras.hdf5"
    dense = model.get_layer("pool6_mbox_loc_flat").get_weights()  # stored as a 1x1 convolution here
    write_ssd_keras_h5(path, model, override={"pool6_mbox_loc_flat": [dense[0][None, None], dense[1]]})
    loaded = ssd.SSDScorer(weights_path=path)
    assert loaded.arch == ssd.SSD_KERAS and loaded.priors.shape == (7308, 4)
    for a, b in zip(model.get_weights(), loaded.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ssd.SSDWeightsError, match="not arch='caffe'"):
        ssd.SSDScorer(weights_path=path, arch=ssd.CAFFE)


def _varint(number):
    out = bytearray()
    while True:
        byte, number = number & 0x7F, number >> 7
        out.append(byte | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(number, payload):
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def encode_caffemodel(model):
    """NetParameter bytes as Caffe writes them: kernels (out, in, kh, kw); biases with the legacy
    num/channels/height/width shape; the Normalize scale with a BlobShape."""
    layers = [_field(1, b"VGG_VOC0712_SSD_300x300_deploy")]
    for layer in model.layers:
        if not layer.weights:
            continue
        blobs = []
        for array in layer.get_weights():
            if array.ndim == 4:
                array = array.transpose(3, 2, 0, 1)
                shape = _field(7, _field(1, b"".join(_varint(d) for d in array.shape)))
            elif isinstance(layer, ssd.Normalize):
                shape = _field(7, _field(1, _varint(array.shape[0])))
            else:
                shape = b"".join(_varint(f << 3) + _varint(d) for f, d in zip((1, 2, 3, 4), (1, 1, 1, array.size)))
            blobs.append(_field(7, shape + _field(5, np.ascontiguousarray(array, "<f4").tobytes())))
        kind = b"Normalize" if isinstance(layer, ssd.Normalize) else b"Convolution"
        layers.append(_field(100, _field(1, layer.name.encode()) + _field(2, kind) + b"".join(blobs)))
    return b"".join(layers)


def test_caffemodel_is_read_without_caffe(random_run, tmp_path):
    scorer = random_run[0]
    path = tmp_path / ssd.CAFFEMODEL_FILE
    path.write_bytes(encode_caffemodel(scorer.model))
    model = ssd.load_ssd_weights(ssd.build_ssd300(), path)
    for a, b in zip(scorer.model.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


# ------------------------------------------------------------------------------ (g) missing weights

def test_missing_weights_error_names_file_folder_link_and_flag(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    folder = str(tmp_path / "keras" / "models")
    with pytest.raises(WeightsNotFoundError) as error:
        ssd.SSDScorer()
    message = str(error.value)
    for part in (ssd.WEIGHTS_FILE, folder, "--ssd-weights PATH", ssd.WEIGHTS_URL, "never downloads", "checksum",
                 ssd.CAFFEMODEL_FILE):
        assert part in message
    with pytest.raises(WeightsNotFoundError, match=r"elsewhere\.hdf5 is not in .*\(the path given\)"):
        ssd.resolve_weights_path(tmp_path / "elsewhere.hdf5")
    os.makedirs(folder)
    Path(folder, ssd.WEIGHTS_FILE).write_bytes(b"")
    assert ssd.resolve_weights_path() == os.path.join(folder, ssd.WEIGHTS_FILE)
    Path(folder, ssd.CAFFEMODEL_FILE).write_bytes(b"")  # the paper's detector is preferred
    assert ssd.resolve_weights_path() == os.path.join(folder, ssd.CAFFEMODEL_FILE)
