"""SavedModel export of a trained generator, in TF Serving's layout (`DIR/<model name>/<version>/`).

Signatures (inputs are checked inside the graph: rank, sizes, batch agreement, finite values):

  serving_default  source_image uint8 (batch, H, W, 3), source_keypoints and target_keypoints float32
                   (batch, 18, 2) in (y, x) pixels, -1 for a missing joint -> generated_image uint8 (batch, H, W, 3)
  serving_float    the same with source_image and generated_image float32 in [-1, 1] ((x / 255 - 0.5) * 2, as
                   in training) -> generated_image float32 in [-1, 1]
  serving_encoded  source_image_bytes string (batch,): a JPEG or PNG file's bytes ({"b64": ...} in REST), H x W,
                   and the keypoints as above -> generated_image_bytes string (batch,): PNG files (TF Serving's REST
                   API returns an output whose name ends in _bytes as {"b64": ...}); a 128x64 request is about 5 KB
                   of JSON instead of about 110 KB of integers

Heatmaps, part masks and affines are computed inside the graph from the keypoints; any batch size. The graph
holds only TensorFlow ops: loading it needs `tf.saved_model.load` (or TF Serving), not dgan_tf. Assets:
`config.json` (the training run's) and `dgan_tf_export.json` (versions, image size, precision, the signatures);
`assets.extra/tf_serving_warmup_requests` holds one warm-up request per signature (TF Serving replays them while
loading, so that the first client request does not pay the graph optimisation, 2-6 s).
Dtypes are checked by whatever feeds the graph (TF Serving's REST and gRPC decoding, TensorFlow's binding of
tensors); TensorFlow's Python binding converts numpy arrays to the signature's dtype silently, so dgan_tf's own
loader (`load_export`, behind dgan_tf.load_generator) checks dtypes and ranges before it calls.

Writing is checked before any work (the output folders, the version: a positive int64, as TF Serving numbers
versions) and atomic (a hidden `.V.tmp-HOST-PID-XXXXXXXX` folder renamed into place); the next export removes the
hidden folders that killed exports left. A full disk or a read-only folder is reported as files.WriteError.

precision="bfloat16" exports a copy computing in bfloat16 (same signatures): several times faster on CPUs with
AMX / AVX512-BF16 and on GPUs, outputs a few uint8 levels from the float32 model.
"""

import datetime
import json
import os
import platform
import re
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

from dgan_tf.files import write_error
from dgan_tf.geometry.keypoints import NUM_JOINTS
from dgan_tf.images import ImageSize, input_image_size
from dgan_tf.outputs import check_output_folder
from dgan_tf.run import GeneratorFileError
from dgan_tf.run.lock import STALE_AFTER_S, process_running

SERVING_SIGNATURE = "serving_default"
FLOAT_SIGNATURE = "serving_float"
ENCODED_SIGNATURE = "serving_encoded"
INPUT_NAMES = ("source_image", "source_keypoints", "target_keypoints")
KEYPOINT_NAMES = INPUT_NAMES[1:]
OUTPUT_NAME = "generated_image"
# serving_encoded's image input and output: TF Serving's REST API writes a string output whose name ends in
# "_bytes" as {"b64": ...}, and reads {"b64": ...} in a request as bytes.
ENCODED_INPUT_NAME = "source_image_bytes"
ENCODED_OUTPUT_NAME = "generated_image_bytes"
WARMUP_FILE = "assets.extra/tf_serving_warmup_requests"  # TF Serving's name, inside the version folder
METADATA_FILE = "dgan_tf_export.json"
CONFIG_FILE = "config.json"
DEFAULT_MODEL_NAME = "dgan"
DEFAULT_OUTPUT_DIR = "exports"
FORMAT_VERSION = 1
FLOAT_IMAGE_TOLERANCE = 1e-3  # serving_float accepts images in [-1 - tol, 1 + tol]
# Layers that stay float32 in a bfloat16 export: pixel coordinates, affine fits and warps need the precision.
FLOAT32_LAYERS = ("PoseHeatmaps", "PartGeometry", "DeformableSkip")
MAX_VERSION = 2**63 - 1  # TF Serving's version numbers are int64
_MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
# The hidden folder an export is written in: .VERSION.tmp-HOST-PID-XXXXXXXX (mkdtemp's 8 characters); HOST-PID
# absent in the folders of dgan_tf 0.2.
_PARTIAL_EXPORT = re.compile(r"^\.\d+\.tmp-(?:(?P<host>.+)-(?P<pid>\d+)-)?[A-Za-z0-9_]{8}$")


class ExportError(ValueError):
    """A checkpoint that cannot be exported, or an output folder that would be overwritten."""


def signature_specs(image_size):
    """{signature: ({input: (dtype, shape, meaning)}, {output: (dtype, shape, meaning)})}; batch is None.

    Each signature's inputs are its image first, then the two keypoint inputs."""
    height, width = image_size
    image_shape, keypoint_shape = (None, height, width, 3), (None, NUM_JOINTS, 2)
    keypoints = "(y, x) pixels of the 18 OpenPose COCO joints, -1 for a missing joint"
    poses = {"source_keypoints": ("float32", keypoint_shape, f"the photo's pose: {keypoints}"),
             "target_keypoints": ("float32", keypoint_shape, f"the pose to draw: {keypoints}")}
    specs = {}
    for name, dtype, meaning in ((SERVING_SIGNATURE, "uint8", "RGB, 0-255"),
                                 (FLOAT_SIGNATURE, "float32", "RGB in [-1, 1]: (x / 255 - 0.5) * 2")):
        inputs = {"source_image": (dtype, image_shape, f"the person's photo, {meaning}"), **poses}
        outputs = {OUTPUT_NAME: (dtype, image_shape, f"the person in the target pose, {meaning}")}
        specs[name] = (inputs, outputs)
    encoded = {ENCODED_INPUT_NAME: ("string", (None,), f"the person's photo: the bytes of a JPEG or PNG file of "
                                                       f"{height}x{width} pixels ({{\"b64\": ...}} in REST)"), **poses}
    specs[ENCODED_SIGNATURE] = (encoded, {ENCODED_OUTPUT_NAME: ("string", (None,), "the person in the target pose: "
                                                                "the bytes of a PNG file ({\"b64\": ...} in REST)")})
    return specs


def _shape_text(shape):
    return "(" + ", ".join("batch" if d is None else str(d) for d in shape) + ("," if len(shape) == 1 else "") + ")"


# ---------------------------------------------------------------------------------------------------
# The serving module


def _input_checks(signature, inputs, specs):
    """tf.debugging.Assert ops, chained so the first failing check is the one reported, each naming its input.

    The shapes are compared at run time (the signature's static shapes are not trusted: TF Serving feeds what
    the request holds), including a rank mismatch, which an elementwise comparison would turn into a shape error.
    """
    import tensorflow as tf

    checks, batch = [], None
    image_name = next(iter(specs))
    for name in specs:
        dtype, shape, _ = specs[name]
        tensor = inputs[name]
        actual = tf.shape(tensor, out_type=tf.int32)
        padded = tf.concat([actual, tf.fill([len(shape) + 1], -7)], axis=0)[: len(shape) + 1]  # rank-safe
        expected = tf.stack([padded[0]] + [tf.constant(d, tf.int32) for d in shape[1:]] + [tf.constant(-7)])
        ok = tf.logical_and(tf.reduce_all(tf.equal(padded, expected)), padded[0] >= 1)
        with tf.control_dependencies(checks[-1:]):
            checks.append(tf.debugging.Assert(
                ok, [f"{signature}: input '{name}' must be {dtype} of shape {_shape_text(shape)} with batch >= 1; "
                     "received shape", actual], summarize=8, name=f"check_{name}_shape"))
        if batch is None:
            batch = padded[0]
        else:
            with tf.control_dependencies(checks[-1:]):
                checks.append(tf.debugging.Assert(
                    tf.equal(padded[0], batch),
                    [f"{signature}: input '{name}' must have the batch size of '{image_name}'; {image_name} batch",
                     batch, f"{name} batch", padded[0]], name=f"check_{name}_batch"))
    for name in KEYPOINT_NAMES:
        with tf.control_dependencies(checks[-1:]):
            checks.append(tf.debugging.Assert(
                tf.reduce_all(tf.math.is_finite(inputs[name])),
                [f"{signature}: input '{name}' must hold finite numbers ((y, x) pixels, -1 for a missing joint); "
                 "received NaN or Inf"], name=f"check_{name}_finite"))
    if signature == FLOAT_SIGNATURE:
        image = inputs["source_image"]
        inside = tf.logical_and(image >= -1.0 - FLOAT_IMAGE_TOLERANCE, image <= 1.0 + FLOAT_IMAGE_TOLERANCE)
        with tf.control_dependencies(checks[-1:]):
            checks.append(tf.debugging.Assert(
                tf.reduce_all(inside),  # NaN fails the comparisons too
                [f"{signature}: input 'source_image' must hold finite values in [-1, 1] ((x / 255 - 0.5) * 2; "
                 f"send 0-255 images as uint8 to {SERVING_SIGNATURE}); received min", tf.reduce_min(image), "max",
                 tf.reduce_max(image)], name="check_source_image_range"))
    return checks


JPEG_START, PNG_START = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"  # the files' signatures


def decode_images(data, image_size, signature=ENCODED_SIGNATURE, name=ENCODED_INPUT_NAME):
    """(B,) JPEG or PNG file bytes -> (B, H, W, 3) uint8 RGB, the pixels dgan_tf.images.read_image gives (the
    training pipeline's decoder: JPEG with the accurate IDCT, 16-bit grey PNG rounded), each checked in the graph
    first: a JPEG or PNG signature, then the decoded size; a failed check names `signature` and `name`.

    Bytes that start like a JPEG or PNG file but are damaged further on fail in TensorFlow's decoder, whose
    message does not name the input."""
    import tensorflow as tf

    from dgan_tf.data.pipeline import decode_image_bytes

    height, width = image_size
    wanted = f"{signature}: input '{name}' must hold the bytes of JPEG or PNG files of {height}x{width} pixels"

    def decode(one):
        # Each check's failure is the only error: what follows a failed check gets a blank image instead of its
        # input (the executor may run it before the assertion), so no decoder or shape error can come first.
        blank = tf.zeros((height, width, 3), tf.uint8)
        known = tf.logical_or(tf.equal(tf.strings.substr(one, 0, len(JPEG_START)), JPEG_START),
                              tf.equal(tf.strings.substr(one, 0, len(PNG_START)), PNG_START))
        check = tf.debugging.Assert(
            known, [f"{wanted} (base64 {{\"b64\": ...}} in REST); received", tf.strings.length(one),
                    "bytes that start with neither signature"], name=f"check_{name}_format")
        with tf.control_dependencies([check]):
            image = tf.cond(known, lambda: decode_image_bytes(one), lambda: blank)
        size = tf.shape(image)[:2]
        right = tf.reduce_all(tf.equal(size, [height, width]))
        check = tf.debugging.Assert(right, [f"{wanted}; received an image of (height, width)", size],
                                    name=f"check_{name}_size")
        with tf.control_dependencies([check]):
            return tf.ensure_shape(tf.cond(right, lambda: image, lambda: blank), (height, width, 3))

    return tf.map_fn(decode, data, fn_output_signature=tf.TensorSpec((height, width, 3), tf.uint8))


def serving_generator(generator, precision="float32"):
    """The generator as the export computes it: itself (float32), or a bfloat16 copy with the same weights.

    bfloat16: convolutions and norms in bfloat16 with bfloat16 weights (half the size; several times faster on
    CPUs with AMX or AVX512-BF16 and on GPUs), the keypoint geometry and the warps kept in float32.
    """
    import keras

    from dgan_tf.options import EXPORT_PRECISIONS, check_choice

    check_choice("precision", precision, EXPORT_PRECISIONS)
    if precision == "float32":
        return generator

    def clone(layer):
        config = layer.get_config()
        if type(layer).__name__ not in FLOAT32_LAYERS:
            config["dtype"] = precision
        return type(layer).from_config(config)

    copy = keras.models.clone_model(generator, clone_function=clone)
    copy.set_weights(generator.get_weights())
    return copy


def build_serving_module(generator, assets=(), precision="float32"):
    """The tf.Module to save: the two signatures as tf.functions over the Keras generator, and the assets.

    The generator itself is not an attribute of the module (only its variables are), so the SavedModel's object
    graph holds no Keras objects and loads without Keras or dgan_tf. Save it with `serving_signatures(module)`.
    """
    import keras
    import tensorflow as tf

    if keras.backend.backend() != "tensorflow":
        raise ExportError(f"the export is a TensorFlow SavedModel: run it with KERAS_BACKEND=tensorflow (the default), "
                          f"not {keras.backend.backend()}; a generator trained on any backend loads there as it is")
    generator = serving_generator(generator, precision)
    image_size = input_image_size(generator)
    specs = signature_specs(image_size)
    module = tf.Module(name="dgan_generator")
    module._all_variables = [variable.value for variable in generator.variables]  # what the graph captures
    module.assets = [tf.saved_model.Asset(str(path)) for path in assets]

    def tensor_specs(signature):
        inputs, _ = specs[signature]
        return [tf.TensorSpec(shape, getattr(tf, dtype), name=n) for n, (dtype, shape, _) in inputs.items()]

    # One trace of the generator, called by every signature after its own input checks.
    @tf.function(input_signature=tensor_specs(FLOAT_SIGNATURE))
    def generator_float(source_image, source_keypoints, target_keypoints):
        generated = generator([source_image, source_keypoints, target_keypoints], training=False)
        return tf.cast(generated, tf.float32)  # (B, H, W, 3) in [-1, 1]

    def generate(signature, source_image, source_keypoints, target_keypoints):
        inputs = dict(zip(specs[signature][0], (source_image, source_keypoints, target_keypoints)))
        with tf.control_dependencies(_input_checks(signature, inputs, specs[signature][0])):
            inputs = {name: tf.identity(tensor) for name, tensor in inputs.items()}
        image = inputs.pop(ENCODED_INPUT_NAME, None)
        image = decode_images(image, image_size, signature) if image is not None else inputs["source_image"]
        if image.dtype == tf.uint8:
            image = (tf.cast(image, tf.float32) / 255.0 - 0.5) * 2.0  # as the training pipeline
        return generator_float(image, inputs["source_keypoints"], inputs["target_keypoints"])

    @tf.function(input_signature=tensor_specs(FLOAT_SIGNATURE))
    def serve_float(source_image, source_keypoints, target_keypoints):
        return {OUTPUT_NAME: generate(FLOAT_SIGNATURE, source_image, source_keypoints, target_keypoints)}

    @tf.function(input_signature=tensor_specs(SERVING_SIGNATURE))
    def serve_uint8(source_image, source_keypoints, target_keypoints):
        generated = generate(SERVING_SIGNATURE, source_image, source_keypoints, target_keypoints)
        return {OUTPUT_NAME: uint8_output(generated)}

    @tf.function(input_signature=tensor_specs(ENCODED_SIGNATURE))
    def serve_encoded(source_image_bytes, source_keypoints, target_keypoints):
        generated = uint8_output(generate(ENCODED_SIGNATURE, source_image_bytes, source_keypoints, target_keypoints))
        return {ENCODED_OUTPUT_NAME: tf.map_fn(tf.io.encode_png, generated, fn_output_signature=tf.string)}

    # generator_float is saved through them
    module.serve_uint8, module.serve_float, module.serve_encoded = serve_uint8, serve_float, serve_encoded
    return module


def uint8_output(generated):
    """serving_default's output from the generated float32 (B, H, W, 3) in [-1, 1]: rounded, half to even.

    dgan_tf.images.serving_uint8 computes the same in numpy (tested); the original's evaluation truncated.
    """
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((generated + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def serving_signatures(module):
    """{signature name: tf.function} for tf.saved_model.save, which traces them itself (once, in its save context:
    a concrete function traced before would be traced again there)."""
    return {SERVING_SIGNATURE: module.serve_uint8, FLOAT_SIGNATURE: module.serve_float,
            ENCODED_SIGNATURE: module.serve_encoded}


# ---------------------------------------------------------------------------------------------------
# Writing the export


def check_model_name(name):
    if not isinstance(name, str) or not _MODEL_NAME.match(name):
        raise ExportError(f"model name must be letters, digits, '_', '.' or '-' (a folder name TF Serving accepts). "
                          f"Received: {name!r}")
    return name


def existing_versions(model_dir):
    """Sorted version numbers of `model_dir` (its all-digit sub-folders, as TF Serving counts them)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isdigit())


def next_version(model_dir):
    """1 for a new model folder, else one more than the highest version there (a file with an all-digit name
    takes its number too: the version folder could not be created there)."""
    model_dir = Path(model_dir)
    taken = [int(p.name) for p in model_dir.iterdir() if p.name.isdigit()] if model_dir.is_dir() else []
    return max(taken) + 1 if taken else 1


def _free_version(model_dir, version):
    """`version`, or the next free one when None; an ExportError when that folder exists already."""
    if version is None:
        return next_version(model_dir)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise ExportError(f"version must be a positive integer of at most {MAX_VERSION} (2**63 - 1: TF Serving "
                          f"numbers versions in int64). Received: version={version!r}")
    if (Path(model_dir) / str(version)).exists():
        raise ExportError(f"{Path(model_dir) / str(version)} already exists; choose another --version (next free: "
                          f"{next_version(model_dir)}) or remove it")
    return version


def check_export_target(output_dir, model_name, version):
    """(model folder, version): everything an export writes, checked before any work; ExportError,
    OutputPathError or WriteError (a read-only folder) otherwise."""
    check_output_folder(output_dir, "--output-dir", folders=(check_model_name(model_name),))
    model_dir = Path(output_dir) / model_name
    return model_dir, _free_version(model_dir, version)


def _newest_mtime(folder):
    times = [folder.stat().st_mtime]
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            try:
                times.append(os.stat(os.path.join(root, name)).st_mtime)
            except OSError:
                pass
    return max(times)


def remove_partial_exports(model_dir):
    """Delete the hidden folders that killed exports left in `model_dir`; returns their paths.

    One of this machine's is left when the process named in its name still runs (an export in progress); one of
    another host (or of dgan_tf 0.2, which named none) when something in it changed within STALE_AFTER_S.
    """
    model_dir = Path(model_dir)
    removed = []
    if not model_dir.is_dir():
        return removed
    for entry in sorted(model_dir.iterdir()):
        match = _PARTIAL_EXPORT.match(entry.name)
        if not match or not entry.is_dir():
            continue
        if match["host"] == _host_tag():
            stale = not process_running(int(match["pid"]))
        else:
            stale = time.time() - _newest_mtime(entry) > STALE_AFTER_S
        if stale:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def _host_tag():
    return re.sub(r"[^A-Za-z0-9_.-]", "_", socket.gethostname()) or "host"


def export_metadata(image_size, config=None, source=None, model_name=DEFAULT_MODEL_NAME, version=None,
                    precision="float32"):
    """What travels in assets/dgan_tf_export.json."""
    import keras
    import tensorflow as tf

    import dgan_tf

    specs = signature_specs(image_size)
    return {
        "format": "dgan_tf generator SavedModel",
        "format_version": FORMAT_VERSION,
        "dgan_tf_version": dgan_tf.__version__,
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "python_version": platform.python_version(),
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source": None if source is None else str(source),
        "model_name": model_name,
        "version": version,
        "image_size": list(image_size),
        "precision": precision,
        "variant": None if config is None else config.variant,
        "dataset": None if config is None else config.dataset,
        "signatures": {
            name: {kind: {key: {"dtype": dtype, "shape": [-1 if d is None else d for d in shape], "meaning": meaning}
                          for key, (dtype, shape, meaning) in tensors.items()}
                   for kind, tensors in (("inputs", inputs), ("outputs", outputs))}
            for name, (inputs, outputs) in specs.items()
        },
    }


def export_generator(generator, output_dir=DEFAULT_OUTPUT_DIR, model_name=DEFAULT_MODEL_NAME, version=None,
                     config=None, source=None, precision="float32"):
    """Write `generator` as `output_dir/model_name/version/` (version None: the next free one); returns that path.

    Atomic: the SavedModel is written into a hidden sibling folder (which TF Serving ignores: not all digits)
    and renamed into place, so a server watching the model folder never loads half an export. The hidden folders
    of killed exports are removed first, each with a note.
    """
    import tensorflow as tf

    model_dir, version = check_export_target(output_dir, model_name, version)
    final = model_dir / str(version)
    for path in remove_partial_exports(model_dir):
        print(f"removed {path}: the partial folder of an interrupted export", file=sys.stderr, flush=True)
    image_size = input_image_size(generator)
    tmp = None
    try:
        model_dir.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=model_dir, prefix=f".{version}.tmp-{_host_tag()}-{os.getpid()}-"))
        with tempfile.TemporaryDirectory() as staging:
            assets = []
            if config is not None:
                assets.append(Path(staging) / CONFIG_FILE)
                assets[-1].write_text(config.to_json())
            metadata = export_metadata(image_size, config, source, model_name, version, precision)
            assets.append(Path(staging) / METADATA_FILE)
            assets[-1].write_text(json.dumps(metadata, indent=2))
            module = build_serving_module(generator, assets, precision)
            export_dir = tmp / "model"
            tf.saved_model.save(module, str(export_dir), signatures=serving_signatures(module))
            write_warmup_requests(export_dir, image_size, model_name)
        os.chmod(export_dir, 0o777 & ~_umask())
        os.rename(export_dir, final)  # fails, leaving nothing half-written, if `final` appeared meanwhile
    except (OSError, tf.errors.OpError) as error:  # a full disk, a read-only folder: TensorFlow's errors too
        raise write_error(error, final) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------------------------------
# Warm-up requests: what TF Serving replays while it loads a version (assets.extra/tf_serving_warmup_requests, a
# TFRecord file of tensorflow.serving.PredictionLog protos). Written here without tensorflow-serving-api, which
# dgan_tf does not need at run time: the few protobuf fields below, by their numbers in TF Serving's
# prediction_log.proto (PredictionLog.predict_log = 6), predict.proto (PredictLog.request = 1;
# PredictRequest.model_spec = 1, inputs = 2, a map<string, TensorProto>: entry key = 1, value = 2) and model.proto
# (ModelSpec.name = 1, signature_name = 3). The tests parse them back with tensorflow_serving.apis.

# A standing figure, (y, x) as fractions of the image's height and width: the warm-up pose.
WARMUP_POSE = ((0.117, 0.5), (0.219, 0.5), (0.234, 0.344), (0.375, 0.312), (0.5, 0.297), (0.234, 0.656),
               (0.375, 0.688), (0.5, 0.703), (0.516, 0.406), (0.703, 0.406), (0.898, 0.391), (0.516, 0.594),
               (0.703, 0.594), (0.898, 0.609), (0.094, 0.469), (0.094, 0.531), (0.102, 0.422), (0.102, 0.578))


def _varint(value):
    out = bytearray()
    while True:
        out.append((value & 0x7F) | (0x80 if value > 0x7F else 0))
        value >>= 7
        if not value:
            return bytes(out)


def _message_field(number, payload):
    """A length-delimited protobuf field (wire type 2): a string, bytes or an embedded message."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def prediction_log(model_name, signature, tensors):
    """A serialized tensorflow.serving.PredictionLog holding one PredictRequest; tensors: {input name: array}."""
    import tensorflow as tf

    model_spec = _message_field(1, model_name.encode()) + _message_field(3, signature.encode())
    inputs = b"".join(_message_field(2, _message_field(1, name.encode()) + _message_field(
        2, tf.make_tensor_proto(array).SerializeToString())) for name, array in tensors.items())
    request = _message_field(1, model_spec) + inputs
    return _message_field(6, _message_field(1, request))


def warmup_inputs(image_size, signature):
    """One request's inputs for `signature` (batch 1): a mid-grey photo and the standing WARMUP_POSE."""
    import numpy as np

    height, width = image_size
    image = np.full((1, height, width, 3), 128, np.uint8)
    pose = np.round(np.asarray(WARMUP_POSE, np.float32) * np.float32([height - 1, width - 1]))[None]  # (1, 18, 2)
    if signature == FLOAT_SIGNATURE:
        image = (image / 255.0 - 0.5).astype(np.float32) * 2.0
    first = {SERVING_SIGNATURE: "source_image", FLOAT_SIGNATURE: "source_image", ENCODED_SIGNATURE:
             ENCODED_INPUT_NAME}[signature]
    if signature == ENCODED_SIGNATURE:
        import tensorflow as tf

        image = np.array([tf.io.encode_png(image[0]).numpy()], dtype=object)
    return {first: image, "source_keypoints": pose, "target_keypoints": pose}


def write_warmup_requests(export_dir, image_size, model_name=DEFAULT_MODEL_NAME):
    """assets.extra/tf_serving_warmup_requests in `export_dir`: one request per signature; returns its path."""
    import tensorflow as tf

    path = Path(export_dir) / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature in signature_specs(image_size):
            writer.write(prediction_log(model_name, signature, warmup_inputs(image_size, signature)))
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------------------------------
# Reading runs and exports


def export_run(run, output_dir=DEFAULT_OUTPUT_DIR, model_name=DEFAULT_MODEL_NAME, version=None,
               precision="float32"):
    """Export the generator of a training run (a run folder or its .keras file; its config.json travels with it);
    returns the version folder."""
    from dgan_tf.run import Run

    check_export_target(output_dir, model_name, version)  # fail before loading anything
    run = Run.open(run)
    config = run.load_config() if run.has_config() else None
    generator = run.load_model(config)
    return export_generator(generator, output_dir, model_name, version, config=config, source=run.folder,
                            precision=precision)


def find_export(path):
    """A SavedModel folder (saved_model.pb inside), or a model folder of numbered versions -> the newest version."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = [v for v in existing_versions(path) if (path / str(v) / "saved_model.pb").is_file()]
    if versions:
        return path / str(versions[-1])
    raise FileNotFoundError(f"{path} holds no SavedModel: expected saved_model.pb inside, or numbered version "
                            "folders as written by scripts/export.py")


def read_export_metadata(export_dir):
    """The dgan_tf_export.json of an export (no TensorFlow needed); GeneratorFileError names it when unreadable."""
    path = Path(export_dir) / "assets" / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {export_dir} was not written by dgan_tf's export")
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
        ImageSize.of(metadata["image_size"])
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as error:
        raise GeneratorFileError(f"{path} is not the metadata of a dgan_tf export ({type(error).__name__}: {error}); "
                                 f"{REEXPORT}") from None
    return metadata


REEXPORT = "export the run again: python scripts/export.py --run RUN"


class LoadedExport:
    """An export loaded and checked by `load_export`: its folder, image size, serving_default and serving_float."""

    def __init__(self, folder, loaded, signature, image_size):
        self.folder, self.image_size, self.signature = folder, image_size, signature
        self.float_signature = loaded.signatures.get(FLOAT_SIGNATURE)
        self._loaded = loaded  # keeps the variables the signature captures alive


def load_export(path):
    """An export (a version folder, or a model folder: its newest version) loaded with tf.saved_model.load and checked:
    a readable SavedModel whose serving_default is a dgan_tf generator's. GeneratorFileError names the folder and
    the reason otherwise; FileNotFoundError when `path` holds no SavedModel."""
    import tensorflow as tf

    folder = find_export(path)
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as error:  # a damaged saved_model.pb or variables file: parse, IO and index errors alike
        reason = (str(error).strip().splitlines() or [""])[0][:300]
        raise GeneratorFileError(f"{folder} is not a readable SavedModel ({type(error).__name__}: {reason}): damaged "
                                 f"or incomplete; {REEXPORT}") from None
    signature = getattr(loaded, "signatures", {}).get(SERVING_SIGNATURE)
    inputs = {} if signature is None else signature.structured_input_signature[1]
    received = {name: (spec.dtype.name, tuple(spec.shape)) for name, spec in inputs.items()}
    image = received.get("source_image", ("", ()))
    size = image[1][1:3] if len(image[1]) == 4 else ()
    expected = None if None in size or len(size) != 2 else signature_specs(size)[SERVING_SIGNATURE][0]
    if expected is None or received != {name: (dtype, shape) for name, (dtype, shape, _) in expected.items()}:
        shown = ", ".join(f"{name} {dtype} {shape}" for name, (dtype, shape) in sorted(received.items()))
        raise GeneratorFileError(
            f"{folder} is not a dgan_tf export: its {SERVING_SIGNATURE} takes {shown or 'nothing'}; a dgan_tf export "
            "takes source_image uint8 (batch, H, W, 3), source_keypoints and target_keypoints float32 (batch, 18, 2)")
    return LoadedExport(folder, loaded, signature, ImageSize.of(tuple(int(v) for v in size)))


# ---------------------------------------------------------------------------------------------------
# TF Serving requests


def rest_request(source_image, source_keypoints, target_keypoints, signature=SERVING_SIGNATURE, row_format=True):
    """A TF Serving REST predict body (a dict to json.dump): row format {"instances": [...]} or columnar {"inputs"}.

    Arrays are batched: images (B, H, W, 3), keypoints (B, 18, 2). For serving_encoded each image goes as a PNG
    file (or give `source_image` as a list of B JPEG or PNG files' bytes), base64 in {"b64": ...} as TF Serving's
    REST API reads bytes: about 5 KB of JSON for a 128x64 photo instead of about 110 KB of integers.
    """
    import base64

    import numpy as np

    if signature == ENCODED_SIGNATURE:
        files = [image if isinstance(image, bytes) else png_bytes(image) for image in source_image]
        images = [{"b64": base64.b64encode(data).decode("ascii")} for data in files]
    else:
        images = np.asarray(source_image).tolist()
    names = tuple(signature_specs((1, 1))[signature][0])  # the signature's input names, the image first
    arrays = dict(zip(names, (images, np.asarray(source_keypoints, np.float32).tolist(),
                              np.asarray(target_keypoints, np.float32).tolist())))
    body = {"signature_name": signature}
    if row_format:
        body["instances"] = [{name: arrays[name][i] for name in names} for i in range(len(images))]
    else:
        body["inputs"] = arrays
    return body


def photo_file(path, photo, prepared):
    """The file serving_encoded gets for a photo: the photo's own file when it is a JPEG and `prepared` (the model's
    input, (H, W, 3) uint8) is its pixels as they are (the export decodes them as dgan_tf.images.read_image does),
    else `prepared` as a PNG file."""
    import numpy as np

    data = Path(path).read_bytes()
    if data.startswith(JPEG_START) and np.shape(photo) == np.shape(prepared) and np.array_equal(photo, prepared):
        return data
    return png_bytes(prepared)


def png_bytes(image):
    """(H, W, 3) uint8 -> the bytes of a PNG file (lossless: the export decodes the same pixels)."""
    import imageio.v3 as iio
    import numpy as np

    return iio.imwrite("<bytes>", np.asarray(image, np.uint8), extension=".png")
