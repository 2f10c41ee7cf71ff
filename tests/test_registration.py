"""`.keras` files and dgan_tf's layers: written now, a file loaded without `import dgan_tf` names that fix in
Keras's own error; with it, it loads; files written by earlier versions (c526ced: tests/fixtures/layers_c526ced.keras)
still load.

tests/fixtures/layers_c526ced.keras was written at c526ced: a model of KeypointGuard x 2 -> PoseHeatmaps,
PartGeometry -> DeformableSkip -> Concatenate -> ScalarInstanceNorm on 16x16 images, every dgan_tf layer a
generator file holds (`model.save(path)` of that model, built with dgan_tf.layers there).
"""

import json
import subprocess
import sys
import zipfile

import numpy as np

from dgan_tf.layers.registration import OLD_PACKAGE, PACKAGE
from tests.conftest import REPO_ROOT
from tests.serving_helpers import STANDING_POSE

OLD_FILE = REPO_ROOT / "tests" / "fixtures" / "layers_c526ced.keras"
LAYERS = {"KeypointGuard", "PoseHeatmaps", "PartGeometry", "DeformableSkip", "ScalarInstanceNorm"}

# A fresh process: Keras alone cannot load the file and its message says what to do; after `import dgan_tf`, it loads.
FRESH = """
import sys
import keras
try:
    keras.saving.load_model(sys.argv[1])
except TypeError as error:
    print("refused:", error)
import dgan_tf
print("loaded:", type(keras.saving.load_model(sys.argv[1])).__name__)
"""


def registered_names(path):
    with zipfile.ZipFile(path) as archive:
        text = archive.read("config.json").decode()
    names, pending = set(), [json.loads(text)]
    while pending:
        node = pending.pop()
        if isinstance(node, dict):
            if node.get("module", "").startswith("dgan_tf."):
                names.add(node["registered_name"])
            pending.extend(node.values())
        elif isinstance(node, list):
            pending.extend(node)
    return names


def inputs():
    image = np.linspace(-1, 1, 16 * 16 * 3, dtype=np.float32).reshape(1, 16, 16, 3)
    return [image, STANDING_POSE[None] / 8, STANDING_POSE[None, ::-1] / 8]


def test_an_earlier_file_loads_and_files_written_now_name_the_fix(tmp_path):
    import keras

    import dgan_tf  # noqa: F401

    assert registered_names(OLD_FILE) == {f"{OLD_PACKAGE}>{name}" for name in LAYERS}
    old = keras.saving.load_model(OLD_FILE)
    assert {type(layer).__name__ for layer in old.layers} >= LAYERS
    expected = keras.ops.convert_to_numpy(old(inputs()))
    assert np.isfinite(expected).all()

    new_file = tmp_path / "now.keras"
    old.save(new_file)
    assert registered_names(new_file) == {f"{PACKAGE}>{name}" for name in LAYERS} and "import dgan_tf" in PACKAGE
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(keras.saving.load_model(new_file)(inputs())), expected)

    from dgan_tf.run.folder import _foreign_class, _model_config

    assert _foreign_class(_model_config(OLD_FILE)) is None and _foreign_class(_model_config(new_file)) is None

    done = subprocess.run([sys.executable, "-c", FRESH, str(new_file)], capture_output=True, text=True, timeout=300,
                          cwd=REPO_ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    refused, loaded = done.stdout.strip().splitlines()[-2:]
    assert "Could not locate class 'KeypointGuard'" in refused and f"'{PACKAGE}>KeypointGuard'" in refused
    assert "import dgan_tf before loading" in refused
    assert loaded == "loaded: Functional"
