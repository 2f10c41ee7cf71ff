"""SavedModel export for TF Serving: layout, signatures, input checks, and a fresh process without dgan_tf.

One export (a tiny untrained generator, module scope) serves every slow test: a fresh Python process that cannot
import dgan_tf loads it and runs the raw arrays, TF Serving REST bodies and a gRPC PredictRequest through it;
`saved_model_cli show --all` and `saved_model_cli run` read it; transfer.py runs from it.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dgan_tf.inference import export
from tests.conftest import REPO_ROOT
from tests.serving_helpers import STANDING_POSE, make_tiny_run, write_openpose

NAMES = export.INPUT_NAMES
IMAGE_SIZE = (128, 64)


# ---------------------------------------------------------------------------------------------------
# Fast: layout and request helpers


def test_versions_follow_tf_servings_numbered_folders(tmp_path):
    assert export.next_version(tmp_path / "absent") == 1
    for name in ("1", "3", ".4.tmp-x", "notes"):
        (tmp_path / name).mkdir()
    assert export.existing_versions(tmp_path) == [1, 3]
    assert export.next_version(tmp_path) == 4


def test_an_existing_version_is_refused_before_loading_anything(tmp_path):
    (tmp_path / "dgan" / "1").mkdir(parents=True)
    with pytest.raises(export.ExportError, match=r"dgan/1 already exists; choose another --version \(next free: 2\)"):
        export.export_run(tmp_path / "no-run", tmp_path, "dgan", 1)
    with pytest.raises(export.ExportError, match="model name must be"):
        export.export_run(tmp_path / "no-run", tmp_path, "../up", None)


def test_versions_are_tf_servings_int64_and_a_file_takes_its_number(tmp_path, capsys):
    from dgan_tf.cli.export import main

    with pytest.raises(export.ExportError, match=r"at most 9223372036854775807 \(2\*\*63 - 1: TF Serving"):
        export.check_export_target(tmp_path, "dgan", 2**63)
    assert export.check_export_target(tmp_path, "dgan", 2**63 - 1)[1] == 2**63 - 1
    assert main(["--run", str(tmp_path / "no-run"), "--output-dir", str(tmp_path), "--version",
                 "99999999999999999999"]) == 2
    assert "at most 9223372036854775807" in capsys.readouterr().err
    (tmp_path / "dgan").mkdir()
    (tmp_path / "dgan" / "1").write_text("a file named like a version")
    assert export.check_export_target(tmp_path, "dgan", None) == (tmp_path / "dgan", 2)
    with pytest.raises(export.ExportError, match="dgan/1 already exists"):
        export.check_export_target(tmp_path, "dgan", 1)


def test_the_partial_folders_of_killed_exports_are_removed_and_running_ones_kept(tmp_path):
    import socket
    import subprocess
    import time

    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    host = socket.gethostname()
    names = {".1.tmp-abcd1234": True, f".2.tmp-{host}-{gone}-abcd1234": True,  # dgan_tf 0.2's, old; a dead one
             f".3.tmp-{host}-{os.getpid()}-abcd1234": False, ".4.tmp-elsewhere-7-abcd1234": False,  # running
             ".5.tmp-elsewhere-7-abcd1234": True, "6": False, ".notes": False}
    for name in names:
        (tmp_path / name / "model").mkdir(parents=True)
    old = time.time() - 2 * 3600
    for name in (".1.tmp-abcd1234", ".5.tmp-elsewhere-7-abcd1234"):
        for path in (tmp_path / name / "model", tmp_path / name):
            os.utime(path, (old, old))
    removed = export.remove_partial_exports(tmp_path)
    assert sorted(p.name for p in removed) == sorted(name for name, stale in names.items() if stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(name for name, stale in names.items() if not stale)


def test_a_full_disk_during_an_export_is_named_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    """TensorFlow reports ENOSPC as ResourceExhaustedError (not an OSError); a killed export's folder goes first."""
    import tensorflow as tf

    from dgan_tf.cli.export import main

    make_tiny_run(tmp_path / "run", IMAGE_SIZE)
    stale = tmp_path / "exports" / "dgan" / ".1.tmp-abcd1234"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))

    def full_disk(module, path, signatures=None):
        raise tf.errors.ResourceExhaustedError(None, None, f"{path}/variables/variables_temp/part-00000; No space "
                                               "left on device [Op:SaveV2]")

    monkeypatch.setattr(tf.saved_model, "save", full_disk)
    assert main(["--run", str(tmp_path / "run"), "--output-dir", str(tmp_path / "exports")]) == 2
    err = capsys.readouterr().err
    assert f"removed {stale}: the partial folder of an interrupted export" in err
    final = tmp_path / "exports" / "dgan" / "1"
    assert f"error: No space left on device while writing {final}; free space under" in err and "Traceback" not in err
    assert list((tmp_path / "exports" / "dgan").iterdir()) == []


def test_the_export_loader_names_a_damaged_or_foreign_savedmodel(tmp_path):
    import tensorflow as tf

    from dgan_tf.run import GeneratorFileError

    damaged = tmp_path / "damaged" / "1"
    damaged.mkdir(parents=True)
    (damaged / "saved_model.pb").write_bytes(b"\x0a\xff" * 50)
    with pytest.raises(GeneratorFileError, match=rf"{damaged} is not a readable SavedModel \(.*\): damaged or "
                                                 "incomplete; export the run again"):
        export.load_export(damaged.parent)
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec((None, 4), tf.float32, "x")])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"serving_default": module.double})
    with pytest.raises(GeneratorFileError, match=r"other is not a dgan_tf export: its serving_default takes x float32 "
                                                 r"\(None, 4\); a dgan_tf export takes source_image uint8"):
        export.load_export(tmp_path / "other")


def test_export_cli_errors_are_one_line(tmp_path, capsys):
    from dgan_tf.cli.export import main

    assert main(["--run", str(tmp_path / "missing-run"), "--output-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "missing-run not found" in err and "Traceback" not in err


def test_rest_request_row_and_columnar_formats():
    image = np.arange(2 * 4 * 2 * 3, dtype=np.uint8).reshape(2, 4, 2, 3)
    keypoints = np.zeros((2, 18, 2), np.float32)
    rows = export.rest_request(image, keypoints, keypoints + 1)
    assert rows["signature_name"] == "serving_default" and len(rows["instances"]) == 2
    assert rows["instances"][1]["source_image"] == image[1].tolist()
    assert rows["instances"][0]["target_keypoints"][0] == [1.0, 1.0]
    columns = export.rest_request(image, keypoints, keypoints, signature="serving_float", row_format=False)
    assert columns["signature_name"] == "serving_float" and columns["inputs"]["source_image"] == image.tolist()


def test_the_warmup_records_parse_as_tf_servings_prediction_logs(tmp_path):
    """assets.extra/tf_serving_warmup_requests: a TFRecord of PredictionLog protos, one request per signature."""
    import tensorflow as tf

    prediction_log_pb2 = pytest.importorskip(
        "tensorflow_serving.apis.prediction_log_pb2",
        reason="tensorflow-serving-api not installed (pip install tensorflow-serving-api==2.21.0)")
    path = export.write_warmup_requests(tmp_path, IMAGE_SIZE, "market")
    assert path == tmp_path / "assets.extra" / "tf_serving_warmup_requests"
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    requests = [log.predict_log.request for log in logs]
    specs = export.signature_specs(IMAGE_SIZE)
    assert [(r.model_spec.name, r.model_spec.signature_name) for r in requests] == [("market", name) for name in specs]
    for request, (inputs, _) in zip(requests, specs.values()):
        assert sorted(request.inputs) == sorted(inputs)
        arrays = {name: tf.make_ndarray(tensor) for name, tensor in request.inputs.items()}
        for name, (dtype, shape, _) in inputs.items():
            assert arrays[name].shape == (1,) + shape[1:]
            assert tf.as_dtype(arrays[name].dtype).name == dtype or (dtype == "string" and arrays[name].dtype == object)
        keypoints = arrays["source_keypoints"][0]
        assert (keypoints >= 0).all() and (keypoints < IMAGE_SIZE).all() and keypoints[10, 0] > keypoints[0, 0]
    image = tf.io.decode_png(tf.make_ndarray(requests[2].inputs["source_image_bytes"])[0]).numpy()
    np.testing.assert_array_equal(image, tf.make_ndarray(requests[0].inputs["source_image"])[0])


def _batching_parameters_class():
    """TF Serving's BatchingParameters (session_bundle_config.proto), which tensorflow-serving-api does not ship:
    its fields, by name and number, in a pool of their own."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, wrappers_pb2

    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb).SerializeToString())
    file = descriptor_pb2.FileDescriptorProto(name="batching.proto", package="tensorflow.serving", syntax="proto3",
                                              dependency=["google/protobuf/wrappers.proto"])
    message = file.message_type.add(name="BatchingParameters")
    field = descriptor_pb2.FieldDescriptorProto
    for number, (name, wrapper) in enumerate((("max_batch_size", "Int64Value"), ("batch_timeout_micros", "Int64Value"),
                                              ("max_enqueued_batches", "Int64Value"),
                                              ("num_batch_threads", "Int64Value"),
                                              ("thread_pool_name", "StringValue")), start=1):
        message.field.add(name=name, number=number, type=field.TYPE_MESSAGE, label=field.LABEL_OPTIONAL,
                          type_name=f".google.protobuf.{wrapper}")
    message.field.add(name="allowed_batch_sizes", number=6, type=field.TYPE_INT64, label=field.LABEL_REPEATED)
    message.field.add(name="pad_variable_length_inputs", number=7, type=field.TYPE_BOOL, label=field.LABEL_OPTIONAL)
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.serving.BatchingParameters"))


def test_the_serving_kits_files_parse_as_tf_servings_configuration(tmp_path):
    """docs/serving/models.config is a ModelServerConfig serving exports/dgan mounted at /models (as its docker
    command mounts it); batching_parameters.txt a BatchingParameters TF Serving accepts."""
    from google.protobuf import text_format

    model_server_config_pb2 = pytest.importorskip(
        "tensorflow_serving.config.model_server_config_pb2",
        reason="tensorflow-serving-api not installed (pip install tensorflow-serving-api==2.21.0)")
    kit = REPO_ROOT / "docs" / "serving"
    config = text_format.Parse((kit / "models.config").read_text(), model_server_config_pb2.ModelServerConfig())
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path, model.model_platform) == (export.DEFAULT_MODEL_NAME, "/models/dgan",
                                                                    "tensorflow")
    assert model.model_version_policy.latest.num_versions == 1
    assert "source=$PWD/exports,target=/models" in (kit / "models.config").read_text()
    batching = text_format.Parse((kit / "batching_parameters.txt").read_text(), _batching_parameters_class()())
    sizes = list(batching.allowed_batch_sizes)
    assert sizes == sorted(sizes) and sizes[-1] == batching.max_batch_size.value  # TF Serving's two rules
    assert batching.batch_timeout_micros.value > 0 and batching.num_batch_threads.value >= 1


def test_an_encoded_request_of_a_real_photo_is_a_fraction_of_the_integers(real_images):
    """serving_default's JSON spells every pixel as an integer; serving_encoded's carries the PNG file in base64."""
    import base64

    from dgan_tf.images import read_image

    photo = read_image(real_images / "source-image.jpg")[None]  # (1, 128, 64, 3)
    keypoints = np.full((1, 18, 2), -1, np.float32)
    integers = json.dumps(export.rest_request(photo, keypoints, keypoints), separators=(",", ":"))
    encoded = export.rest_request(photo, keypoints, keypoints, signature="serving_encoded")
    text = json.dumps(encoded, separators=(",", ":"))
    instance = encoded["instances"][0]
    assert sorted(instance) == ["source_image_bytes", "source_keypoints", "target_keypoints"]
    import imageio.v3 as iio

    np.testing.assert_array_equal(iio.imread(base64.b64decode(instance["source_image_bytes"]["b64"])), photo[0])
    # The photo's own JPEG file when the model's input is its pixels (a photo of the model's size), else a PNG.
    path = real_images / "source-image.jpg"
    jpeg = export.photo_file(path, photo[0], photo[0])
    assert jpeg == path.read_bytes() and export.photo_file(path, photo[0], photo[0][::-1]).startswith(export.PNG_START)
    as_jpeg = json.dumps(export.rest_request([jpeg], keypoints, keypoints, "serving_encoded"), separators=(",", ":"))
    # 128x64: integers about 100 KB, a PNG about 23 KB, the JPEG file about 8 KB (5.3 KB in base64 x 4/3, and poses)
    assert len(integers) > 90_000 and len(text) * 3 < len(integers) and len(as_jpeg) * 10 < len(integers), \
        (len(integers), len(text), len(as_jpeg))


def test_signature_specs_name_dtypes_and_shapes():
    specs = export.signature_specs(IMAGE_SIZE)
    inputs, outputs = specs["serving_default"]
    assert inputs["source_image"][:2] == ("uint8", (None, 128, 64, 3))
    assert inputs["target_keypoints"][:2] == ("float32", (None, 18, 2))
    assert outputs["generated_image"][:2] == ("uint8", (None, 128, 64, 3))
    assert specs["serving_float"][1]["generated_image"][:2] == ("float32", (None, 128, 64, 3))


# ---------------------------------------------------------------------------------------------------
# The shared export (slow)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny run exported through the command line's main(), as a user would."""
    from dgan_tf.cli.export import main

    root = tmp_path_factory.mktemp("export")
    run_dir = root / "run"
    generator = make_tiny_run(run_dir, IMAGE_SIZE)
    assert main(["--run", str(run_dir), "--output-dir", str(root / "exports")]) == 0
    return SimpleNamespace(root=root, run_dir=run_dir, model_dir=root / "exports" / "dgan",
                           export_dir=root / "exports" / "dgan" / "1", generator=generator)


@pytest.fixture(scope="module")
def request_files(exported):
    """A photo and three target poses (CSV row, COCO-18 and BODY_25 OpenPose) -> the REST request transfer.py
    writes for the README's curl example; its arrays are the inputs of every comparison."""
    from dgan_tf.cli.transfer import main
    from dgan_tf.data.annotations import write_annotations
    from dgan_tf.visualize import write_image_atomic

    work = exported.root / "request"
    work.mkdir()
    rng = np.random.default_rng(0)
    write_image_atomic(work / "photo.png", rng.integers(0, 256, IMAGE_SIZE + (3,), dtype=np.uint8))
    poses = [STANDING_POSE, STANDING_POSE + np.float32([4, -3]), STANDING_POSE + np.float32([-2, 5])]
    poses[1][15] = -1
    write_annotations(work / "poses.csv", ["photo.png", "walk.png"], np.stack([poses[0], poses[2]]).astype(np.int64))
    write_openpose(work / "frame.json", [poses[1]])
    write_openpose(work / "frame25.json", [poses[2]], body25=True)
    request = work / "request_instances.json"
    assert main(["--run", str(exported.model_dir), "--source", str(work / "photo.png"),
                 "--source-pose", f"{work / 'poses.csv'}:photo.png", "--target-pose", f"{work / 'poses.csv'}:walk.png",
                 str(work / "frame.json"), str(work / "frame25.json"), "--write-request", str(request)]) == 0
    encoded = work / "request_encoded.json"  # the same, serving_encoded's body: base64 PNG files
    assert main(["--run", str(exported.model_dir), "--source", str(work / "photo.png"),
                 "--source-pose", f"{work / 'poses.csv'}:photo.png", "--target-pose", f"{work / 'poses.csv'}:walk.png",
                 str(work / "frame.json"), str(work / "frame25.json"), "--write-request", str(encoded), "--encoded"]) == 0
    body = json.loads(request.read_text())
    arrays = {name: np.stack([np.asarray(i[name]) for i in body["instances"]]) for name in NAMES}
    arrays = {"source_image": arrays["source_image"].astype(np.uint8),
              "source_keypoints": arrays["source_keypoints"].astype(np.float32),
              "target_keypoints": arrays["target_keypoints"].astype(np.float32)}
    np.testing.assert_array_equal(arrays["target_keypoints"][[0, 1]], np.stack([poses[2], poses[1]]))
    (work / "request_inputs.json").write_text(json.dumps(export.rest_request(*arrays.values(), row_format=False)))
    for name, array in arrays.items():
        np.save(work / f"{name}.npy", array)
    return SimpleNamespace(work=work, arrays=arrays)


@pytest.fixture(scope="module")
def keras_output(exported, request_files):
    """What the Keras generator makes of the same inputs: float in [-1, 1]."""
    arrays = request_files.arrays
    images = (arrays["source_image"].astype(np.float32) / 255.0 - 0.5) * 2.0
    # An eager call: the same graph as predict_on_batch, without its trace (seconds even for a tiny model).
    return np.asarray(exported.generator([images, arrays["source_keypoints"], arrays["target_keypoints"]],
                                         training=False), np.float32)


FRESH_PROCESS = r'''
import json, sys
from pathlib import Path


class NoDganTf:  # dgan_tf may be installed in this environment: it cannot be imported in this process
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "dgan_tf":
            raise ImportError("dgan_tf is blocked in this process")


sys.meta_path.insert(0, NoDganTf())
import numpy as np
import tensorflow as tf

export_dir, work = Path(sys.argv[1]), Path(sys.argv[2])
loaded = tf.saved_model.load(str(export_dir))
uint8_sig, float_sig = loaded.signatures["serving_default"], loaded.signatures["serving_float"]
names = ("source_image", "source_keypoints", "target_keypoints")
inputs = {name: np.load(work / f"{name}.npy") for name in names}
floats = dict(inputs, source_image=((inputs["source_image"] / 255.0 - 0.5) * 2.0).astype(np.float32))
out = {"uint8": uint8_sig(**inputs)["generated_image"].numpy(),
       "float": float_sig(**floats)["generated_image"].numpy()}

# TF Serving's REST decoding: row format stacks the instances, columnar takes each input whole; dtypes from the
# signature named in the body.
for kind in ("instances", "inputs"):
    body = json.loads((work / f"request_{kind}.json").read_text())
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    if kind == "instances":
        arrays = {n: np.stack([np.asarray(row[n]) for row in body["instances"]]) for n in specs}
    else:
        arrays = {n: np.asarray(body["inputs"][n]) for n in specs}
    result = signature(**{n: tf.constant(a, dtype=specs[n].dtype) for n, a in arrays.items()})["generated_image"]
    # the response body TF Serving sends back: {"predictions": [...]} / {"outputs": [...]}
    response = json.loads(json.dumps({"predictions" if kind == "instances" else "outputs": result.numpy().tolist()}))
    out[f"rest_{kind}"] = np.asarray(next(iter(response.values())), np.uint8)

# serving_encoded through REST: a {"b64": ...} value is bytes; an output whose name ends in _bytes goes back as
# {"b64": ...}.
import base64

body = json.loads((work / "request_encoded.json").read_text())
signature = loaded.signatures[body["signature_name"]]
specs = signature.structured_input_signature[1]
arrays = {n: [base64.b64decode(row[n]["b64"]) if isinstance(row[n], dict) else row[n] for row in body["instances"]]
          for n in specs}
result = signature(**{n: tf.constant(a, dtype=specs[n].dtype) for n, a in arrays.items()})
response = json.loads(json.dumps({"predictions": [{"b64": base64.b64encode(v).decode("ascii")}
                                                  for v in result["generated_image_bytes"].numpy()]}))
out["rest_encoded"] = np.stack([tf.io.decode_png(base64.b64decode(p["b64"])).numpy() for p in response["predictions"]])
encoded_body = {"request_chars": len((work / "request_encoded.json").read_text()),
                "response_chars": len(json.dumps(response, separators=(",", ":"))),
                "png_bytes": [len(v) for v in arrays["source_image_bytes"]]}

# gRPC: the PredictRequest built by the test from the same arrays, parsed, run; the PredictResponse round-trips.
request_path = work / "predict_request.pb"
if request_path.exists():
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest.FromString(request_path.read_bytes())
    assert (request.model_spec.name, request.model_spec.signature_name) == ("dgan", "serving_default")
    result = loaded.signatures[request.model_spec.signature_name](
        **{n: tf.constant(tf.make_ndarray(request.inputs[n])) for n in request.inputs})
    response = predict_pb2.PredictResponse()
    response.outputs["generated_image"].CopyFrom(tf.make_tensor_proto(result["generated_image"]))
    parsed = predict_pb2.PredictResponse.FromString(response.SerializeToString())
    out["grpc"] = tf.make_ndarray(parsed.outputs["generated_image"])

# The warm-up requests, replayed as TF Serving does while loading: each parsed and run through its signature.
warmup = []
try:
    from tensorflow_serving.apis import prediction_log_pb2
except ImportError:
    prediction_log_pb2 = None
if prediction_log_pb2 is not None:
    for record in tf.data.TFRecordDataset(str(export_dir / "assets.extra" / "tf_serving_warmup_requests")):
        request = prediction_log_pb2.PredictionLog.FromString(record.numpy()).predict_log.request
        result = loaded.signatures[request.model_spec.signature_name](
            **{n: tf.constant(tf.make_ndarray(request.inputs[n])) for n in request.inputs})
        warmup.append([request.model_spec.name, request.model_spec.signature_name, sorted(request.inputs),
                       {name: [tensor.dtype.name, tensor.shape.as_list()] for name, tensor in result.items()}])


def error_of(function):
    try:
        function()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return "no error"


def flat(signature, **changes):
    # the graph alone, past the Python binding's own checks, as a server feeds it
    values = dict(inputs, **changes)
    return lambda: signature._call_flat([tf.constant(values[n]) for n in names], signature.captured_inputs)


nan = np.full_like(inputs["source_keypoints"], np.nan)
errors = {
    "nan_source_keypoints": error_of(lambda: uint8_sig(**dict(inputs, source_keypoints=nan))),
    "inf_target_keypoints": error_of(lambda: uint8_sig(**dict(inputs, target_keypoints=np.full_like(nan, np.inf)))),
    "batch": error_of(lambda: uint8_sig(**dict(inputs, target_keypoints=inputs["target_keypoints"][:2]))),
    "float_range": error_of(lambda: float_sig(**dict(floats, source_image=inputs["source_image"].astype(np.float32)))),
    "binding_shape": error_of(lambda: uint8_sig(**dict(inputs, source_image=inputs["source_image"][:, :64]))),
    "binding_dtype": error_of(lambda: uint8_sig(**dict(inputs, source_image=tf.constant(floats["source_image"])))),
    "graph_size": error_of(flat(uint8_sig, source_image=inputs["source_image"][:, :64])),
    "graph_rank": error_of(flat(uint8_sig, source_image=inputs["source_image"][0])),
    "graph_joints": error_of(flat(uint8_sig, target_keypoints=inputs["target_keypoints"][:, :17])),
    "graph_empty": error_of(flat(uint8_sig, **{n: inputs[n][:0] for n in names})),
}
encoded_sig = loaded.signatures["serving_encoded"]
png = tf.io.encode_png(inputs["source_image"][0]).numpy()
for case, first in (("encoded_size", tf.io.encode_png(inputs["source_image"][0, :64]).numpy()),
                    ("encoded_bytes", b"GIF89a not a JPEG or PNG")):
    errors[case] = error_of(lambda: encoded_sig(source_image_bytes=tf.constant([png, first, png]),
                                                source_keypoints=inputs["source_keypoints"],
                                                target_keypoints=inputs["target_keypoints"]))
assets = {Path(a.asset_path.numpy().decode()).name: Path(a.asset_path.numpy().decode()).read_text()
          for a in loaded.assets}
(work / "fresh.json").write_text(json.dumps({"errors": errors, "assets": assets, "warmup": warmup,
                                             "encoded_body": encoded_body,
                                             "dgan_tf_imported": "dgan_tf" in sys.modules}))
np.savez(work / "fresh.npz", **out)
'''


def _env_without_dgan_tf():
    """The current environment, minus PYTHONPATH entries that hold dgan_tf (tensorflow_serving's stays)."""
    env = dict(os.environ)
    entries = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and not (Path(p) / "dgan_tf").is_dir()]
    env["PYTHONPATH"] = os.pathsep.join(entries)
    return env


@pytest.fixture(scope="module")
def fresh(exported, request_files):
    """Run FRESH_PROCESS in a process whose sys.path has no dgan_tf (cwd outside the repository)."""
    work = request_files.work
    try:
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        request.model_spec.name, request.model_spec.signature_name = "dgan", "serving_default"
        for name, array in request_files.arrays.items():
            request.inputs[name].CopyFrom(tf.make_tensor_proto(array))
        (work / "predict_request.pb").write_bytes(request.SerializeToString())
    except ImportError:
        pass  # tensorflow-serving-api is not installed: the gRPC test skips
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(exported.export_dir), str(work)], cwd=work,
                          env=_env_without_dgan_tf(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads((work / "fresh.json").read_text())
    return SimpleNamespace(outputs=dict(np.load(work / "fresh.npz")), **report)


def _assert_uint8_close(generated, keras_float):
    from dgan_tf.images import serving_uint8

    assert generated.dtype == np.uint8 and generated.shape == keras_float.shape
    assert np.abs(generated.astype(np.int16) - serving_uint8(keras_float).astype(np.int16)).max() <= 1


@pytest.mark.slow
def test_export_layout_and_assets(exported, fresh):
    assert sorted(p.name for p in exported.model_dir.iterdir()) == ["1"]  # the temporary folder is gone
    assert (exported.export_dir / "saved_model.pb").is_file() and (exported.export_dir / "variables").is_dir()
    assert not fresh.dgan_tf_imported
    assert json.loads(fresh.assets["config.json"]) == json.loads((exported.run_dir / "config.json").read_text())
    metadata = json.loads(fresh.assets[export.METADATA_FILE])
    import dgan_tf

    assert metadata["dgan_tf_version"] == dgan_tf.__version__ and metadata["image_size"] == [128, 64]
    assert metadata["signatures"]["serving_default"]["inputs"]["source_image"]["dtype"] == "uint8"
    assert metadata["signatures"]["serving_default"]["inputs"]["source_image"]["shape"] == [-1, 128, 64, 3]
    assert metadata["signatures"]["serving_encoded"]["inputs"]["source_image_bytes"] == {
        "dtype": "string", "shape": [-1],
        "meaning": "the person's photo: the bytes of a JPEG or PNG file of 128x64 pixels ({\"b64\": ...} in REST)"}
    assert (exported.export_dir / "assets.extra" / "tf_serving_warmup_requests").is_file()


@pytest.mark.slow
def test_a_fresh_process_without_dgan_tf_reproduces_the_keras_generator(fresh, keras_output):
    np.testing.assert_allclose(fresh.outputs["float"], keras_output, atol=1e-5, rtol=0)
    _assert_uint8_close(fresh.outputs["uint8"], keras_output)


@pytest.mark.slow
def test_rest_requests_as_the_readme_sends_them(fresh, keras_output):
    for kind in ("instances", "inputs"):
        np.testing.assert_array_equal(fresh.outputs[f"rest_{kind}"], fresh.outputs["uint8"])
    _assert_uint8_close(fresh.outputs["rest_instances"], keras_output)


@pytest.mark.slow
def test_grpc_predict_request_round_trips(fresh, keras_output):
    pytest.importorskip("tensorflow_serving.apis.predict_pb2",
                        reason="tensorflow-serving-api not installed (pip install tensorflow-serving-api==2.21.0)")
    np.testing.assert_array_equal(fresh.outputs["grpc"], fresh.outputs["uint8"])


@pytest.mark.slow
def test_an_encoded_rest_request_round_trips_to_the_same_image(fresh):
    """serving_encoded's body as transfer.py --encoded writes it: base64 PNG files in, PNG files out, the pixels of
    serving_default's output; a twentieth of the JSON."""
    np.testing.assert_array_equal(fresh.outputs["rest_encoded"], fresh.outputs["uint8"])
    request_instances = fresh.encoded_body["request_chars"] / 3
    assert request_instances < 45_000, fresh.encoded_body  # noise photos here; a real 128x64 photo: under 10 KB


@pytest.mark.slow
def test_the_warmup_requests_replay_through_the_export(fresh):
    pytest.importorskip("tensorflow_serving.apis.prediction_log_pb2",
                        reason="tensorflow-serving-api not installed (pip install tensorflow-serving-api==2.21.0)")
    assert fresh.warmup == [
        ["dgan", "serving_default", ["source_image", "source_keypoints", "target_keypoints"],
         {"generated_image": ["uint8", [1, 128, 64, 3]]}],
        ["dgan", "serving_float", ["source_image", "source_keypoints", "target_keypoints"],
         {"generated_image": ["float32", [1, 128, 64, 3]]}],
        ["dgan", "serving_encoded", ["source_image_bytes", "source_keypoints", "target_keypoints"],
         {"generated_image_bytes": ["string", [1]]}]]


IMAGE_SHAPE_MESSAGE = "input 'source_image' must be uint8 of shape (batch, 128, 64, 3) with batch >= 1"
ENCODED_MESSAGE = "serving_encoded: input 'source_image_bytes' must hold the bytes of JPEG or PNG files of 128x64 pixels"


@pytest.mark.slow
@pytest.mark.parametrize("case, expected", [
    ("nan_source_keypoints", "input 'source_keypoints' must hold finite numbers"),
    ("inf_target_keypoints", "input 'target_keypoints' must hold finite numbers"),
    ("batch", "input 'target_keypoints' must have the batch size of 'source_image'; source_image batch] [3] "
              "[target_keypoints batch] [2]"),
    ("float_range", "serving_float: input 'source_image' must hold finite values in [-1, 1]"),
    ("binding_shape", "name='source_image') to TensorSpec(shape=(None, 128, 64, 3), dtype=tf.uint8"),
    ("binding_dtype", "dtype=tf.float32, name='source_image') to TensorSpec(shape=(None, 128, 64, 3), dtype=tf.uint8"),
    ("graph_size", IMAGE_SHAPE_MESSAGE + "; received shape] [3 64 64 3]"),
    ("graph_rank", IMAGE_SHAPE_MESSAGE + "; received shape] [128 64 3]"),
    ("graph_joints", "input 'target_keypoints' must be float32 of shape (batch, 18, 2) with batch >= 1; "
                     "received shape] [3 17 2]"),
    ("graph_empty", IMAGE_SHAPE_MESSAGE + "; received shape] [0 128 64 3]"),
    ("encoded_size", ENCODED_MESSAGE + "; received an image of (height, width)] [64 64]"),
    ("encoded_bytes", ENCODED_MESSAGE + ' (base64 {"b64": ...} in REST); received] [24] [bytes that start with '
                                        "neither signature]"),
])
def test_bad_inputs_name_the_input_and_what_was_expected(fresh, case, expected):
    message = fresh.errors[case].replace("\\'", "'").replace('\\"', '"')
    assert expected in message, message[:1000]


def _saved_model_cli(*args):
    executable = Path(sys.executable).with_name("saved_model_cli")
    command = [str(executable)] if executable.exists() else [sys.executable, "-m",
                                                            "tensorflow.python.tools.saved_model_cli"]
    done = subprocess.run(command + [str(a) for a in args], capture_output=True, text=True, timeout=600,
                          env=_env_without_dgan_tf())
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _signature_blocks(text):
    """saved_model_cli show --all output -> {signature: {"inputs"/"outputs": {name: (dtype, shape)}}}."""
    blocks, current, tensor = {}, None, None
    for line in text.splitlines():
        if match := re.match(r"signature_def\['(.+)'\]:", line):
            current = blocks.setdefault(match[1], {"inputs": {}, "outputs": {}})
        elif current is not None and (match := re.match(r"\s+(inputs|outputs)\['(.+)'\] tensor_info:", line)):
            tensor = current[match[1]].setdefault(match[2], [None, None])
        elif tensor is not None and (match := re.match(r"\s+(dtype|shape): (.+)", line)):
            tensor[0 if match[1] == "dtype" else 1] = match[2].strip()
    return {name: {kind: {k: tuple(v) for k, v in tensors.items()} for kind, tensors in block.items()}
            for name, block in blocks.items()}


@pytest.mark.slow
def test_saved_model_cli_show_lists_the_signatures(exported):
    blocks = _signature_blocks(_saved_model_cli("show", "--all", "--dir", exported.export_dir))
    image, keypoints = "(-1, 128, 64, 3)", "(-1, 18, 2)"
    assert blocks["serving_default"] == {
        "inputs": {"source_image": ("DT_UINT8", image), "source_keypoints": ("DT_FLOAT", keypoints),
                   "target_keypoints": ("DT_FLOAT", keypoints)},
        "outputs": {"generated_image": ("DT_UINT8", image)}}
    assert blocks["serving_float"]["inputs"]["source_image"] == ("DT_FLOAT", image)
    assert blocks["serving_float"]["outputs"]["generated_image"] == ("DT_FLOAT", image)
    assert blocks["serving_encoded"] == {
        "inputs": {"source_image_bytes": ("DT_STRING", "(-1)"), "source_keypoints": ("DT_FLOAT", keypoints),
                   "target_keypoints": ("DT_FLOAT", keypoints)},
        "outputs": {"generated_image_bytes": ("DT_STRING", "(-1)")}}


@pytest.mark.slow
def test_saved_model_cli_run_makes_an_image_from_npy_inputs(exported, request_files, keras_output, tmp_path):
    work = request_files.work
    inputs = ";".join(f"{name}={work / name}.npy" for name in NAMES)
    _saved_model_cli("run", "--dir", exported.export_dir, "--tag_set", "serve", "--signature_def",
                     "serving_default", "--inputs", inputs, "--outdir", tmp_path)
    _assert_uint8_close(np.load(tmp_path / "generated_image.npy"), keras_output)


@pytest.mark.slow
def test_transfer_runs_from_the_export(exported, request_files, fresh):
    from dgan_tf.images import read_image
    from dgan_tf.inference import transfer as tr
    from dgan_tf.inference.generators import KerasGenerator, SavedModelGenerator, load_generator
    from dgan_tf.inference.poses import Pose

    generator = load_generator(exported.model_dir)  # the model folder: its newest version
    assert isinstance(generator, SavedModelGenerator) and generator.image_size == IMAGE_SIZE
    np.testing.assert_array_equal(generator.generate(*request_files.arrays.values()), fresh.outputs["uint8"])
    # What TensorFlow's binding would cast silently into uint8 garbage is refused before the call.
    images, source_keypoints, target_keypoints = request_files.arrays.values()
    floats = generator.generate(((images / 255.0 - 0.5) * 2.0).astype(np.float32), source_keypoints, target_keypoints)
    np.testing.assert_array_equal(floats, fresh.outputs["float"])  # through serving_float
    with pytest.raises(ValueError, match=r"images must be uint8 RGB \(0-255\), or float in \[-1, 1\].* from 0 to 255"):
        generator.generate(images.astype(np.float32), source_keypoints, target_keypoints)
    with pytest.raises(ValueError, match=r"images must be uint8 RGB .* int32 from 300 to 300"):
        generator.generate(np.full(images.shape, 300, np.int32), source_keypoints, target_keypoints)
    # A photo of another size: resized and padded in, cropped and resized out.
    photo = read_image(request_files.work / "photo.png")[:100]
    arrays = request_files.arrays
    def scaled(keypoints):  # to the 100-row photo; a missing joint stays -1 (a joint at -0.78 is outside the photo)
        return np.where(keypoints == -1, keypoints, keypoints * 100 / 128)

    source = Pose(scaled(arrays["source_keypoints"][0]), "source", "test")
    targets = [Pose(scaled(k), f"t{i}", "test") for i, k in enumerate(arrays["target_keypoints"])]
    images = tr.transfer(generator, tr.prepare_inputs(photo, source, targets, IMAGE_SIZE), batch_size=2)
    assert len(images) == 3 and all(image.shape == (100, 64, 3) and image.dtype == np.uint8 for image in images)
    # A transfer from the run equals a transfer from its export, to the bit.
    from_run = load_generator(exported.run_dir)
    assert isinstance(from_run, KerasGenerator)
    np.testing.assert_array_equal(from_run.generate(*request_files.arrays.values()), fresh.outputs["uint8"])
    from_run_images = tr.transfer(from_run, tr.prepare_inputs(photo, source, targets, IMAGE_SIZE), batch_size=2)
    for exported_image, run_image in zip(images, from_run_images):
        assert np.array_equal(exported_image, run_image)


@pytest.mark.slow
def test_a_bfloat16_export_stays_close_to_the_float32_model(exported, request_files, keras_output):
    import tensorflow as tf

    from dgan_tf.images import serving_uint8

    module = export.build_serving_module(exported.generator, precision="bfloat16")
    assert {v.dtype for v in module._all_variables if v.dtype.is_floating} == {tf.bfloat16}  # half the size
    inputs = {name: tf.constant(array) for name, array in request_files.arrays.items()}
    generated = module.serve_uint8(**inputs)["generated_image"].numpy()
    difference = np.abs(generated.astype(np.int16) - serving_uint8(keras_output).astype(np.int16))
    assert difference.mean() < 1.0 and difference.max() <= 8, (difference.mean(), difference.max())
