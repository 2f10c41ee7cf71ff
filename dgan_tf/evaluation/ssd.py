"""DS, the paper's detection score: the SSD300 (VGG16, PASCAL VOC0712, 21 classes) person confidence.

The original (`ssd_score/compute_ssd_score.py` of AliaksandrSiarohin/pose-gan) ran Caffe's SSD with
`ssd_score/deploy.prototxt` and `VGG_VOC0712_SSD_300x300_iter_120000.caffemodel`: each image (uint8 RGB)
through `caffe.io.Transformer` (bilinear resize to 300x300, BGR, [0, 255], minus the mean (104, 117, 123)),
then the net's DetectionOutput layer (confidence > 0.01, 400 best per class, NMS 0.45, 200 best per image);
the image's score is the best confidence among detections labelled 15 (person), 0 when there is none;
DS is the mean over the images.

Two SSD300 architectures are built here, chosen by the weight file:
- `arch="caffe"`: the deploy.prototxt above (conv4_3 .. conv9_2, 8732 priors); its weights are the
  caffemodel itself, read directly (no Caffe needed). This is the paper's detector.
- `arch="ssd_keras"`: the architecture that `weights_SSD300.hdf5` of rykov8/ssd_keras fits. That file was
  converted from an earlier SSD300 release (VOC0712, 60k iterations; conv8_2 stride 2 then a global average
  "pool6" with dense heads, 7308 priors): not the same network or weights as the deploy.prototxt, so a DS
  from it is not the paper's number.
The weights are never downloaded.
"""

import math
import os
from collections import namedtuple

import keras
import numpy as np
from keras import layers, ops

from dgan_tf import weights as _weights
from dgan_tf.images import check_images
from dgan_tf.layers.registration import register
from dgan_tf.weights import WeightsNotFoundError  # noqa: F401  (part of this module's API)

INPUT_SIZE = 300
NUM_CLASSES = 21
BACKGROUND_CLASS = 0
PERSON_CLASS = 15  # VOC labels with background 0: ..., 14 motorbike, 15 person, 16 pottedplant, ...
MEAN_BGR = (104.0, 117.0, 123.0)
VARIANCES = (0.1, 0.1, 0.2, 0.2)
# DetectionOutput parameters of the deploy.prototxt
CONFIDENCE_THRESHOLD = 0.01
NMS_THRESHOLD = 0.45
TOP_K = 400
KEEP_TOP_K = 200

CAFFE = "caffe"
SSD_KERAS = "ssd_keras"
ARCHS = (CAFFE, SSD_KERAS)

WEIGHTS_FILE = "weights_SSD300.hdf5"
WEIGHTS_URL = "https://mega.nz/#F!7RowVLCL!q3cEVRK9jyOSB9el3SssIA"  # the link of the rykov8/ssd_keras README
CAFFEMODEL_FILE = "VGG_VOC0712_SSD_300x300_iter_120000.caffemodel"
CAFFEMODEL_URL = "https://drive.google.com/open?id=0BzKzrI_SkD1_WVVTSmQxU0dVRzA"  # weiliu89/caffe README, 07+12 SSD300*

PriorSpec = namedtuple("PriorSpec", "source map_size min_size max_size aspect_ratios step")
PriorSpec.__doc__ = "One PriorBox layer: its source layer, feature map side, sizes in pixels, ratios, step."

# The six PriorBox layers of the deploy.prototxt (flip true, clip false, offset 0.5, variances 0.1 0.1 0.2 0.2).
# ssd_keras: its ssd.py PriorBox calls (no step: step = 300 / map side; clip true).
PRIOR_SPECS = {
    CAFFE: (
        PriorSpec("conv4_3_norm", 38, 30.0, 60.0, (2.0,), 8.0),
        PriorSpec("fc7", 19, 60.0, 111.0, (2.0, 3.0), 16.0),
        PriorSpec("conv6_2", 10, 111.0, 162.0, (2.0, 3.0), 32.0),
        PriorSpec("conv7_2", 5, 162.0, 213.0, (2.0, 3.0), 64.0),
        PriorSpec("conv8_2", 3, 213.0, 264.0, (2.0,), 100.0),
        PriorSpec("conv9_2", 1, 264.0, 315.0, (2.0,), 300.0),
    ),
    SSD_KERAS: (
        PriorSpec("conv4_3_norm", 38, 30.0, None, (2.0,), INPUT_SIZE / 38),
        PriorSpec("fc7", 19, 60.0, 114.0, (2.0, 3.0), INPUT_SIZE / 19),
        PriorSpec("conv6_2", 10, 114.0, 168.0, (2.0, 3.0), INPUT_SIZE / 10),
        PriorSpec("conv7_2", 5, 168.0, 222.0, (2.0, 3.0), INPUT_SIZE / 5),
        PriorSpec("conv8_2", 3, 222.0, 276.0, (2.0, 3.0), INPUT_SIZE / 3),
        PriorSpec("pool6", 1, 276.0, 330.0, (2.0, 3.0), INPUT_SIZE / 1),
    ),
}
PRIOR_FLIP = True
PRIOR_OFFSET = 0.5
PRIOR_CLIP = {CAFFE: False, SSD_KERAS: True}

# VGG16 (reduced, atrous fc6/fc7) then the extra layers: (name, filters, kernel, stride, pad) as in Caffe.
_VGG_BLOCKS = (
    (("conv1_1", 64), ("conv1_2", 64)),
    (("conv2_1", 128), ("conv2_2", 128)),
    (("conv3_1", 256), ("conv3_2", 256), ("conv3_3", 256)),
    (("conv4_1", 512), ("conv4_2", 512), ("conv4_3", 512)),
    (("conv5_1", 512), ("conv5_2", 512), ("conv5_3", 512)),
)
_EXTRAS = {
    CAFFE: (("conv6_1", 256, 1, 1, 0), ("conv6_2", 512, 3, 2, 1), ("conv7_1", 128, 1, 1, 0),
            ("conv7_2", 256, 3, 2, 1), ("conv8_1", 128, 1, 1, 0), ("conv8_2", 256, 3, 1, 0),
            ("conv9_1", 128, 1, 1, 0), ("conv9_2", 256, 3, 1, 0)),
    SSD_KERAS: (("conv6_1", 256, 1, 1, 0), ("conv6_2", 512, 3, 2, 1), ("conv7_1", 128, 1, 1, 0),
                ("conv7_2", 256, 3, 2, 1), ("conv8_1", 128, 1, 1, 0), ("conv8_2", 256, 3, 2, 1)),
}


class SSDWeightsError(ValueError):
    """A weight file that does not fit the SSD300 being built; the message names the file and the layer."""


def _check_arch(arch):
    if arch not in ARCHS:
        raise ValueError(f"`arch` must be one of {ARCHS}. Received: arch={arch!r}")


# --------------------------------------------------------------------------------------------- model

@register
class Normalize(layers.Layer):
    """Caffe's Normalize (ParseNet), across_spatial false, channel_shared false: x / sqrt(sum_c x^2 + eps) * gamma_c.

    NHWC; `gamma` (one scale per channel) starts at `scale` (20 in SSD).
    """

    def __init__(self, scale=20.0, eps=1e-10, **kwargs):
        super().__init__(**kwargs)
        self.scale = float(scale)
        self.eps = float(eps)

    def build(self, input_shape):
        self.gamma = self.add_weight(name="gamma", shape=(input_shape[-1],),
                                     initializer=keras.initializers.Constant(self.scale))

    def call(self, inputs):
        norm = ops.sqrt(ops.sum(ops.square(inputs), axis=-1, keepdims=True) + self.eps)
        return inputs / norm * self.gamma

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale, "eps": self.eps}


def _conv(x, name, filters, kernel, stride=1, pad=0, dilation=1, relu=True):
    """Caffe Convolution (symmetric zero padding `pad`) as a Keras Conv2D named `name`."""
    if stride == 1 and 2 * pad == dilation * (kernel - 1):
        padding = "same"  # symmetric at stride 1
    else:
        if pad:  # Keras "same" pads asymmetrically at stride 2 on even sides: pad explicitly like Caffe
            x = layers.ZeroPadding2D(pad, name=f"{name}_pad", dtype="float32")(x)
        padding = "valid"
    return layers.Conv2D(filters, kernel, strides=stride, padding=padding, dilation_rate=dilation,
                         activation="relu" if relu else None, name=name, dtype="float32")(x)


def num_priors_per_location(spec, flip=PRIOR_FLIP):
    """Boxes per feature-map cell: min size, sqrt(min * max) when a max size is given, then the ratios."""
    return len(_box_sizes(spec, flip))


def build_ssd300(num_classes=NUM_CLASSES, arch=CAFFE):
    """SSD300 as a functional Keras model: (N, 300, 300, 3) BGR minus mean -> [loc (N, P, 4), conf (N, P, C)].

    loc: the raw box offsets (decode with `decode_boxes`); conf: softmax over the classes (background 0).
    P = 8732 for arch="caffe" (ssd_score/deploy.prototxt of the original), 7308 for arch="ssd_keras".
    Layer names are Caffe's (= ssd_keras's), so weights are assigned by name (`load_ssd_weights`).
    """
    _check_arch(arch)
    num_classes = int(num_classes)
    inputs = keras.Input((INPUT_SIZE, INPUT_SIZE, 3), dtype="float32", name="data")
    x = inputs
    features = {}
    for index, block in enumerate(_VGG_BLOCKS, start=1):
        for name, filters in block:
            x = _conv(x, name, filters, 3, pad=1)
        if index == 4:
            features["conv4_3"] = x
        # Caffe pools with ceil: 75 -> 38 is Keras "same" (the extra window on the bottom/right edge)
        pool = (2, 2) if index < 5 else (3, 1)  # pool5: 3x3, stride 1, pad 1
        x = layers.MaxPooling2D(pool[0], pool[1], padding="same", name=f"pool{index}", dtype="float32")(x)
    x = _conv(x, "fc6", 1024, 3, pad=6, dilation=6)
    x = features["fc7"] = _conv(x, "fc7", 1024, 1)
    for name, filters, kernel, stride, pad in _EXTRAS[arch]:
        x = features[name] = _conv(x, name, filters, kernel, stride=stride, pad=pad)
    if arch == SSD_KERAS:
        features["pool6"] = layers.GlobalAveragePooling2D(name="pool6", dtype="float32")(x)
    features["conv4_3_norm"] = Normalize(20.0, name="conv4_3_norm", dtype="float32")(features["conv4_3"])

    locs, confs = [], []
    for spec in PRIOR_SPECS[arch]:
        count = num_priors_per_location(spec)
        source = features[spec.source]
        if spec.source == "pool6":  # ssd_keras: dense heads on the global average
            locs.append(layers.Dense(count * 4, name="pool6_mbox_loc_flat", dtype="float32")(source))
            confs.append(layers.Dense(count * num_classes, name="pool6_mbox_conf_flat", dtype="float32")(source))
            continue
        for kind, width, out in (("loc", 4, locs), ("conf", num_classes, confs)):
            head = _conv(source, f"{spec.source}_mbox_{kind}", count * width, 3, pad=1, relu=False)
            # NHWC flatten = Caffe's Permute(0, 2, 3, 1) + Flatten: (row, column, prior, value)
            out.append(layers.Flatten(name=f"{spec.source}_mbox_{kind}_flat", dtype="float32")(head))
    loc = layers.Concatenate(axis=1, name="mbox_loc", dtype="float32")(locs)
    loc = layers.Reshape((-1, 4), name="mbox_loc_reshape", dtype="float32")(loc)
    conf = layers.Concatenate(axis=1, name="mbox_conf", dtype="float32")(confs)
    conf = layers.Reshape((-1, num_classes), name="mbox_conf_reshape", dtype="float32")(conf)
    conf = layers.Softmax(axis=-1, name="mbox_conf_softmax", dtype="float32")(conf)
    return keras.Model(inputs, [loc, conf], name=f"ssd300_{arch}")


# --------------------------------------------------------------------------------------- prior boxes

def _box_sizes(spec, flip=PRIOR_FLIP):
    """(width, height) in pixels of one cell's priors, in Caffe's PriorBox order."""
    ratios = [1.0]
    for ratio in spec.aspect_ratios:
        if any(abs(ratio - r) < 1e-6 for r in ratios):
            continue
        ratios.append(float(ratio))
        if flip:
            ratios.append(1.0 / ratio)
    sizes = [(spec.min_size, spec.min_size)]
    if spec.max_size:
        side = math.sqrt(spec.min_size * spec.max_size)
        sizes.append((side, side))
    for ratio in ratios:
        if abs(ratio - 1.0) < 1e-6:
            continue
        sizes.append((spec.min_size * math.sqrt(ratio), spec.min_size / math.sqrt(ratio)))
    return sizes


def prior_boxes(arch=CAFFE, clip=None, image_size=INPUT_SIZE):
    """Caffe PriorBox boxes of all six layers: (P, 4) float32 [xmin, ymin, xmax, ymax] in [0, 1] units.

    Order: layer, then row, column, prior (Caffe's, matching the model's loc/conf rows). Centres at
    (column + 0.5) * step; clip defaults to the prototxt's (false for "caffe", so boxes may leave [0, 1]).
    """
    _check_arch(arch)
    clip = PRIOR_CLIP[arch] if clip is None else bool(clip)
    boxes = []
    for spec in PRIOR_SPECS[arch]:
        half = np.asarray(_box_sizes(spec), dtype=np.float64) / 2.0  # (K, 2)
        centres = (np.arange(spec.map_size) + PRIOR_OFFSET) * spec.step
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        centre = np.stack([cx, cy], axis=-1).reshape(-1, 1, 2)  # (H*W, 1, 2) as (x, y)
        boxes.append((np.concatenate([centre - half, centre + half], axis=-1) / image_size).reshape(-1, 4))
    boxes = np.concatenate(boxes).astype(np.float32)
    return np.clip(boxes, 0.0, 1.0) if clip else boxes


# ------------------------------------------------------------------------------- decoding and scores

def decode_boxes(loc, priors, variances=VARIANCES):
    """Caffe DecodeBBox, CENTER_SIZE, variances in the priors: (..., P, 4) offsets -> corner boxes, unclipped.

    centre = prior centre + variance * offset * prior size; size = prior size * exp(variance * offset).
    """
    loc = np.asarray(loc, dtype=np.float32)
    priors = np.asarray(priors, dtype=np.float32)
    var = np.asarray(variances, dtype=np.float32)
    width = priors[:, 2] - priors[:, 0]
    height = priors[:, 3] - priors[:, 1]
    centre_x = (priors[:, 0] + priors[:, 2]) / np.float32(2)
    centre_y = (priors[:, 1] + priors[:, 3]) / np.float32(2)
    x = var[0] * loc[..., 0] * width + centre_x
    y = var[1] * loc[..., 1] * height + centre_y
    w = np.exp(var[2] * loc[..., 2]) * width
    h = np.exp(var[3] * loc[..., 3]) * height
    return np.stack([x - w / 2, y - h / 2, x + w / 2, y + h / 2], axis=-1).astype(np.float32)


def _box_size(boxes):
    invalid = (boxes[..., 2] < boxes[..., 0]) | (boxes[..., 3] < boxes[..., 1])
    return np.where(invalid, np.float32(0), (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))


def jaccard_overlap(box, boxes):
    """Caffe's JaccardOverlap (normalized) of one box (4,) with boxes (K, 4): 0 unless they truly intersect."""
    width = np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0])
    height = np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1])
    apart = ((boxes[:, 0] > box[2]) | (boxes[:, 2] < box[0]) | (boxes[:, 1] > box[3]) | (boxes[:, 3] < box[1])
             | (width <= 0) | (height <= 0))
    inter = width * height
    with np.errstate(divide="ignore", invalid="ignore"):
        overlap = inter / (_box_size(box) + _box_size(boxes) - inter)
    return np.where(apart, np.float32(0), overlap)


def nms(boxes, scores, confidence_threshold=CONFIDENCE_THRESHOLD, nms_threshold=NMS_THRESHOLD, top_k=TOP_K,
        above=None):
    """Caffe ApplyNMSFast (eta 1) for one class: kept indices, best first.

    Candidates: score > confidence_threshold, the top_k best (stable order on ties); a candidate is kept when
    its overlap with every kept box is <= nms_threshold. above: only the candidates scoring more than this
    (they are decided by higher-scoring boxes only, so the result is the same prefix as without it).
    """
    scores = np.asarray(scores, dtype=np.float32)
    candidates = np.flatnonzero(scores > np.float32(confidence_threshold))
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k is not None and top_k > -1:
        order = order[:top_k]
    if above is not None:
        order = order[scores[order] > above]
    kept = []
    for index in order:
        if kept and np.any(jaccard_overlap(boxes[index], boxes[kept]) > np.float32(nms_threshold)):
            continue
        kept.append(index)
    return np.asarray(kept, dtype=np.int64)


def detection_output(loc, conf, priors, background_class=BACKGROUND_CLASS,
                     confidence_threshold=CONFIDENCE_THRESHOLD, nms_threshold=NMS_THRESHOLD, top_k=TOP_K,
                     keep_top_k=KEEP_TOP_K, variances=VARIANCES):
    """Caffe's DetectionOutput for one image: loc (P, 4), softmax conf (P, C), priors (P, 4) ->
    (K, 6) float32 rows [label, score, xmin, ymin, xmax, ymax] (boxes clipped to [0, 1]), by label then score.

    Per class but the background: `nms`; then, when more than keep_top_k remain, the keep_top_k best overall.
    No detection gives (0, 6) (Caffe writes one row of -1 instead; neither has a person).
    """
    conf = np.asarray(conf, dtype=np.float32)
    boxes = decode_boxes(loc, priors, variances)
    found = []  # (score, label, index)
    for label in range(conf.shape[-1]):
        if label == background_class:
            continue
        kept = nms(boxes, conf[:, label], confidence_threshold, nms_threshold, top_k)
        found.extend((conf[index, label], label, index) for index in kept)
    if keep_top_k is not None and keep_top_k > -1 and len(found) > keep_top_k:
        found = sorted(found, key=lambda item: -item[0])[:keep_top_k]
    found.sort(key=lambda item: (item[1], -item[0]))
    rows = [(label, score, *np.clip(boxes[index], 0.0, 1.0)) for score, label, index in found]
    return np.asarray(rows, dtype=np.float32).reshape(-1, 6)


def person_score(loc, conf, priors, person_class=PERSON_CLASS, background_class=BACKGROUND_CLASS,
                 confidence_threshold=CONFIDENCE_THRESHOLD, nms_threshold=NMS_THRESHOLD, top_k=TOP_K,
                 keep_top_k=KEEP_TOP_K, variances=VARIANCES):
    """One image's score as compute_ssd_score.py: the best confidence among its `detection_output` rows
    labelled `person_class`, 0 when there is none. Same number, computed faster.

    The best person candidate s (if s > confidence_threshold) always survives its class's top_k and NMS,
    so it is detected unless keep_top_k detections of the other classes score more than s: only those
    (NMS on the candidates above s) are counted.
    """
    conf = np.asarray(conf, dtype=np.float32)
    best = conf[:, person_class].max()
    if not best > np.float32(confidence_threshold):
        return 0.0
    boxes = None
    ahead = 0
    for label in range(conf.shape[-1]):
        if label in (background_class, person_class) or not np.any(conf[:, label] > best):
            continue
        if boxes is None:
            boxes = decode_boxes(loc, priors, variances)
        ahead += len(nms(boxes, conf[:, label], confidence_threshold, nms_threshold, top_k, above=best))
        if keep_top_k is not None and keep_top_k > -1 and ahead >= keep_top_k:
            return 0.0
    return float(best)


def person_scores(loc, conf, priors, **kwargs):
    """`person_score` of each image: loc (N, P, 4), conf (N, P, C) -> (N,) float64."""
    return np.asarray([person_score(l, c, priors, **kwargs) for l, c in zip(loc, conf)], dtype=np.float64)


# ------------------------------------------------------------------------------------- preprocessing

def caffe_resize(image, size=(INPUT_SIZE, INPUT_SIZE)):
    """caffe.io.resize_image of an (H, W, 3) float image: skimage bilinear (order 1, mode 'constant',
    pixel centres at +0.5, no anti-aliasing) on the image scaled to [0, 1] by its own min and max, so the
    samples past the edge blend with the image's minimum; float32 out."""
    image = np.asarray(image, dtype=np.float32)
    low, high = image.min(), image.max()
    if not high > low:
        return np.full((*size, image.shape[-1]), low, dtype=np.float32)
    unit = ((image - low) / (high - low)).astype(np.float64)
    padded = np.pad(unit, ((1, 1), (1, 1), (0, 0)))  # cval 0 beyond the edge

    def taps(n_in, n_out):
        coord = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        first = np.floor(coord)
        return first.astype(np.int64) + 1, (coord - first)  # index into the padded axis, weight of the next

    rows, row_weight = taps(image.shape[0], size[0])
    cols, col_weight = taps(image.shape[1], size[1])
    out = padded[rows] * (1 - row_weight)[:, None, None] + padded[rows + 1] * row_weight[:, None, None]
    out = out[:, cols] * (1 - col_weight)[None, :, None] + out[:, cols + 1] * col_weight[None, :, None]
    out = np.clip(out, 0.0, 1.0)
    return (out * (high - low) + low).astype(np.float32)


def preprocess(image):
    """One uint8 RGB image (H, W, 3) -> (300, 300, 3) float32 as the original's caffe.io.Transformer:
    img_as_float (x / 255), float32, `caffe_resize` to 300x300 when not already that size, RGB -> BGR,
    x 255, minus the mean (104, 117, 123)."""
    image = (np.asarray(image, dtype=np.float64) / 255.0).astype(np.float32)
    if image.shape[:2] != (INPUT_SIZE, INPUT_SIZE):
        image = caffe_resize(image)
    image = image[..., ::-1] * np.float32(255.0)
    return (image - np.asarray(MEAN_BGR, dtype=np.float32)).astype(np.float32)


# ---------------------------------------------------------------------------------------- weight files

def _varint(buffer, position):
    result = shift = 0
    while True:
        byte = buffer[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, position
        shift += 7


def _protobuf_fields(buffer):
    """(field number, wire type, value) of one serialized protobuf message: int, or a memoryview slice."""
    position, end = 0, len(buffer)
    while position < end:
        key, position = _varint(buffer, position)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, position = _varint(buffer, position)
        elif wire == 1:
            value, position = buffer[position:position + 8], position + 8
        elif wire == 2:
            length, position = _varint(buffer, position)
            value, position = buffer[position:position + length], position + length
        elif wire == 5:
            value, position = buffer[position:position + 4], position + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        yield field, wire, value


def _packed_ints(wire, value):
    if wire == 0:
        return [value]
    values, position = [], 0
    while position < len(value):
        number, position = _varint(value, position)
        values.append(number)
    return values


def _caffe_blob(buffer):
    """BlobProto -> float32 array in Caffe's shape (shape.dim, else the legacy num/channels/height/width)."""
    legacy, dims, data = {}, [], None
    for field, wire, value in _protobuf_fields(buffer):
        if field in (1, 2, 3, 4) and wire == 0:
            legacy[field] = value
        elif field == 7:  # BlobShape
            for shape_field, shape_wire, shape_value in _protobuf_fields(value):
                if shape_field == 1:
                    dims.extend(_packed_ints(shape_wire, shape_value))
        elif field == 5 and wire == 2:  # packed float data
            data = np.frombuffer(value, dtype="<f4")
        elif field == 8 and wire == 2:  # packed double data
            data = np.frombuffer(value, dtype="<f8")
    if data is None:
        raise ValueError("a blob without packed float data")
    shape = dims or [legacy.get(i, 1) for i in (1, 2, 3, 4)]
    return data.astype(np.float32).reshape(shape)


def read_caffemodel(path):
    """{layer name: [blobs in Caffe layout]} of a binary .caffemodel (NetParameter), without Caffe.

    Reads the protobuf wire format directly: layer (field 100: name 1, blobs 7) and the legacy
    layers (field 2: name 4, blobs 6). Layers without blobs are left out.
    """
    with open(path, "rb") as handle:
        buffer = memoryview(handle.read())
    found = {}
    for field, wire, value in _protobuf_fields(buffer):
        if wire != 2 or field not in (100, 2):
            continue
        name_field, blobs_field = (1, 7) if field == 100 else (4, 6)
        name, blobs = None, []
        for sub_field, sub_wire, sub_value in _protobuf_fields(value):
            if sub_field == name_field and sub_wire == 2:
                name = bytes(sub_value).decode("utf-8")
            elif sub_field == blobs_field and sub_wire == 2:
                blobs.append(_caffe_blob(sub_value))
        if name is not None and blobs:
            found[name] = blobs
    return found


def _decode(name):
    return name.decode("utf-8") if isinstance(name, bytes) else str(name)


def read_h5_weights(path):
    """{layer name: [arrays]} of a Keras 1/2 weight file (ssd_keras layout): per layer a group whose
    `weight_names` attribute lists its datasets in order (conv: kernel (kh, kw, in, out), bias; the
    Normalize layer: gamma). A whole-model file's "model_weights" group is read the same way."""
    import h5py

    found = {}
    with h5py.File(path, "r") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        names = [_decode(n) for n in root.attrs["layer_names"]] if "layer_names" in root.attrs else list(root)
        for name in names:
            if name not in root or not isinstance(root[name], h5py.Group):
                continue
            group = root[name]
            if "weight_names" not in group.attrs:
                raise SSDWeightsError(
                    f"{path}: group {name!r} has no 'weight_names' attribute; expected a Keras 1/2 weight file "
                    f"laid out as ssd_keras's {WEIGHTS_FILE}")
            arrays = [np.asarray(group[_decode(w)]) for w in group.attrs["weight_names"]]
            if arrays:
                found[name] = arrays
    return found


def read_weight_file(path):
    """("h5" | "caffemodel", {layer name: [arrays]}): HDF5 files as ssd_keras's, anything else as a caffemodel."""
    import h5py

    path = str(path)
    if h5py.is_hdf5(path):
        return "h5", read_h5_weights(path)
    try:
        return "caffemodel", read_caffemodel(path)
    except (ValueError, IndexError, UnicodeDecodeError) as error:
        raise SSDWeightsError(
            f"{path} is neither an HDF5 weight file ({WEIGHTS_FILE}) nor a readable .caffemodel: {error}") from error


def detect_arch(layer_names, path="the weight file"):
    """Which SSD300 a weight file holds, from its layer names: conv9_2 -> "caffe", pool6 heads -> "ssd_keras"."""
    names = set(layer_names)
    if "conv9_2" in names:
        return CAFFE
    if "pool6_mbox_loc_flat" in names:
        return SSD_KERAS
    raise SSDWeightsError(
        f"{path} holds neither SSD300 known here: no layer 'conv9_2' (deploy.prototxt, {CAFFEMODEL_FILE}) "
        f"and no 'pool6_mbox_loc_flat' (ssd_keras, {WEIGHTS_FILE}); layers found: {sorted(names)[:12]}...")


def _caffe_to_keras(array, shape):
    """A Caffe blob in the layout of a Keras weight of `shape`: conv (out, in, kh, kw) -> (kh, kw, in, out);
    inner product (out, in) -> (in, out); vectors flattened."""
    if len(shape) == 4:
        return np.transpose(array.reshape(array.shape[-4:]), (2, 3, 1, 0))
    if len(shape) == 2:
        return array.reshape(shape[1], shape[0]).T if array.size == shape[0] * shape[1] else array
    return array.reshape(-1)


def _squeezed(shape):
    return [d for d in shape if d != 1]


def assign_weights(model, stored, path, layout="h5"):
    """Set every weighted layer of `model` from stored[layer name]; a missing layer or another shape raises
    SSDWeightsError naming the layer and the file. layout "caffemodel": the arrays are Caffe blobs."""
    for layer in model.layers:
        if not layer.weights:
            continue
        if layer.name not in stored:
            raise SSDWeightsError(f"{path} has no weights for layer {layer.name!r} of {model.name}.")
        expected = [tuple(int(d) for d in w.shape) for w in layer.weights]
        arrays = stored[layer.name]
        if layout == "caffemodel" and len(arrays) == len(expected):
            arrays = [_caffe_to_keras(a, s) for a, s in zip(arrays, expected)]
        found = [tuple(a.shape) for a in arrays]
        if len(arrays) == len(expected):  # e.g. a dense kernel stored as a 1x1 convolution's
            arrays = [a.reshape(s) if a.shape != s and _squeezed(a.shape) == _squeezed(s) else a
                      for a, s in zip(arrays, expected)]
        if [tuple(a.shape) for a in arrays] != expected:
            raise SSDWeightsError(
                f"{path}: layer {layer.name!r} holds arrays of shapes {found}, but {model.name} needs {expected}.")
        layer.set_weights([np.asarray(a, dtype=np.float32) for a in arrays])


def load_ssd_weights(model, path):
    """Read `path` (ssd_keras .hdf5 or Caffe .caffemodel) and assign it to `model` by layer name."""
    layout, stored = read_weight_file(path)
    assign_weights(model, stored, path, layout)
    return model


def resolve_weights_path(weights_path=None):
    """The SSD weight file: `weights_path` if given, else in the Keras models folder the caffemodel of the
    paper's detector (preferred), else weights_SSD300.hdf5; raises WeightsNotFoundError when absent."""
    if weights_path is None:
        for name in (CAFFEMODEL_FILE, WEIGHTS_FILE):
            candidate = _weights.default_weights_path(name)
            if os.path.isfile(candidate):
                return candidate
        path = _weights.default_weights_path(WEIGHTS_FILE)
        origin = "the Keras models folder ($KERAS_HOME/models, default ~/.keras/models)"
    else:
        path = os.path.abspath(os.path.expanduser(str(weights_path)))
        if os.path.isfile(path):
            return path
        origin = "the path given"
    folder, name = os.path.split(path)
    models = os.path.dirname(_weights.default_weights_path(WEIGHTS_FILE))
    raise WeightsNotFoundError(
        f"SSD300 weights for DS not found: {name} is not in {folder} ({origin}). dgan_tf never downloads "
        f"weights (there is no official URL with a checksum for the converted file). Get {WEIGHTS_FILE} "
        f"(rykov8/ssd_keras, converted from Caffe) from the link of the ssd_keras README, {WEIGHTS_URL}, "
        f"put it in {models}, or pass its location with --ssd-weights PATH (weights_path=PATH in Python). "
        f"Note that file is an earlier SSD300 than the paper's; for the paper's detector put "
        f"{CAFFEMODEL_FILE} (models_VGGNet_VOC0712_SSD_300x300.tar.gz, {CAFFEMODEL_URL}) there instead.")


# ----------------------------------------------------------------------------------------------- scorer

class SSDScorer:
    """DS: batched SSD300 forward passes and the original's per-image person score.

    weights="pretrained" reads `weights_path` (or the Keras models folder, see `resolve_weights_path`) and
    builds the architecture that file holds; weights="random" (tests, smoke runs) builds `arch` (default
    "caffe") with random weights.
    """

    def __init__(self, weights_path=None, batch_size=16, weights="pretrained", arch=None, progress=False):
        if weights not in ("pretrained", "random"):
            raise ValueError(f"`weights` must be 'pretrained' or 'random'. Received: weights={weights!r}")
        if weights == "random" and weights_path is not None:
            raise ValueError(f"`weights_path` is only used with weights='pretrained'. Received: {weights_path!r}")
        if arch is not None:
            _check_arch(arch)
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer. Received: batch_size={batch_size!r}")
        self.batch_size = int(batch_size)
        self.progress = bool(progress)
        self.weights_path = None
        if weights == "pretrained":
            self.weights_path = resolve_weights_path(weights_path)
            layout, stored = read_weight_file(self.weights_path)
            found = detect_arch(stored, self.weights_path)
            if arch is not None and arch != found:
                raise SSDWeightsError(f"{self.weights_path} holds the {found!r} SSD300, not arch={arch!r}.")
            self.arch = found
            self.model = build_ssd300(arch=found)
            assign_weights(self.model, stored, self.weights_path, layout)
        else:
            self.arch = arch or CAFFE
            self.model = build_ssd300(arch=self.arch)
        self.priors = prior_boxes(self.arch)

    @property
    def description(self):
        """What produced the numbers, for a report's notes."""
        net = {CAFFE: "SSD300 VOC0712 of the original's deploy.prototxt (8732 priors)",
               SSD_KERAS: "SSD300 VOC0712 of ssd_keras (earlier release, 7308 priors; not the paper's detector)"}
        source = self.weights_path or "random weights"
        return f"DS: {net[self.arch]}, weights {source}; person = class {PERSON_CLASS}, mean of the best confidence"

    def predict(self, images):
        """uint8 RGB images (N, H, W, 3) or a list of (H, W, 3) -> loc (N, P, 4), conf (N, P, 21) float32."""
        images = check_images(images)
        starts = range(0, len(images), self.batch_size)
        if self.progress:
            from tqdm import tqdm
            starts = tqdm(starts, desc="SSD300", unit="batch")
        locs, confs = [], []
        for start in starts:
            batch = np.stack([preprocess(image) for image in images[start:start + self.batch_size]])
            loc, conf = self.model.predict_on_batch(batch)
            locs.append(np.asarray(loc, dtype=np.float32))
            confs.append(np.asarray(conf, dtype=np.float32))
        return np.concatenate(locs), np.concatenate(confs)

    def person_scores(self, images):
        """(N,) per image: the best person (class 15) detection confidence, 0 when none (compute_ssd_score.py)."""
        loc, conf = self.predict(images)
        return person_scores(loc, conf, self.priors)

    def detection_score(self, images):
        """DS: the mean of `person_scores` over the images."""
        return float(np.mean(self.person_scores(images)))
