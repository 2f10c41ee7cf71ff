"""The package's floors: every import (module level or inside a function) goes to the same floor or a lower one,
no two modules import each other (directly or around a loop), and layers, models and geometry import no
TensorFlow at module level (they are keras.ops code that runs on JAX too). Like keras-hub's import test.
"""

import ast
from pathlib import Path

from tests.conftest import REPO_ROOT

PACKAGE = REPO_ROOT / "dgan_tf"
# Lowest first. The data flows upwards: keypoints and CSVs -> geometry -> data -> layers -> models and losses ->
# the run folder and loss terms -> training and evaluation -> build and inference -> the command line.
FLOORS = (
    ("dgan_tf.options", "dgan_tf.files", "dgan_tf.images", "dgan_tf.outputs", "dgan_tf.tensorflow_logs"),
    ("dgan_tf.geometry", "dgan_tf.variants", "dgan_tf.weights", "dgan_tf.visualize"),
    ("dgan_tf.data", "dgan_tf.config"),
    ("dgan_tf.layers", "dgan_tf"),  # importing the package registers the layers
    ("dgan_tf.models", "dgan_tf.losses"),
    ("dgan_tf.loss_terms", "dgan_tf.run"),
    ("dgan_tf.training", "dgan_tf.evaluation"),
    ("dgan_tf.build", "dgan_tf.inference"),
    ("dgan_tf.cli",),
)
KERAS_OPS_ONLY = ("dgan_tf.layers", "dgan_tf.models", "dgan_tf.geometry")


def module_name(path):
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def floor(module):
    """The floor of the longest FLOORS prefix of `module`."""
    best = None
    for level, prefixes in enumerate(FLOORS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[1])):
                best = (level, prefix)
    assert best is not None, f"{module} is on no floor: add it to FLOORS in {__file__}"
    return best[0]


def public_api_getattr(module, tree):
    """The package's module-level `__getattr__`, which imports the public API (dgan_tf.load_generator) from the top
    floors when first asked for: the one import allowed to go up, since it never runs while a module loads."""
    if module != "dgan_tf":
        return None
    return next((node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"), None)


def imports(module):
    """dgan_tf modules that `module` imports anywhere in its file (a name imported from a package counts as the
    submodule when there is one), but in the package's public API `__getattr__`."""
    found = set()
    tree = ast.parse(MODULES[module].read_text())
    facade = public_api_getattr(module, tree)
    skipped = set() if facade is None else {id(node) for node in ast.walk(facade)}
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "dgan_tf"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "dgan_tf":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return found


def test_every_import_goes_down_or_stays_on_its_floor():
    upward = [f"{module} (floor {floor(module)}) imports {target} (floor {floor(target)})"
              for module in MODULES for target in sorted(imports(module)) if floor(target) > floor(module)]
    assert not upward, "\n".join(upward)


def test_no_import_cycles():
    graph = {module: {t for t in imports(module) if t in MODULES and t != module} for module in MODULES}
    cycles, state = [], {}

    def visit(module, trail):
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target):] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def module_level_statements(tree):
    """Statements that run at import: the module body, looking inside if/try/with blocks but not into functions."""
    pending = list(tree.body)
    while pending:
        node = pending.pop()
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                pending.extend(getattr(node, field, []))
        elif isinstance(node, ast.ExceptHandler):
            pending.extend(node.body)


def test_layers_models_and_geometry_import_no_tensorflow_at_module_level():
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith(KERAS_OPS_ONLY):
            continue
        for node in module_level_statements(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{module}:{node.lineno} imports {name}" for name in names
                          if name.split(".")[0] in ("tensorflow", "tf_keras")]
    assert not offenders, "\n".join(offenders)


def test_the_checks_catch_a_violation(tmp_path, monkeypatch):
    """An upward import, a cycle and a module-level TensorFlow import, planted in copies, are each reported."""
    planted = {"dgan_tf.geometry.warp": "from dgan_tf.training import gan\nimport tensorflow as tf\n",
               "dgan_tf.training.gan": "from dgan_tf.training import trainer\n",
               "dgan_tf.training.trainer": "from dgan_tf.training import gan\n"}
    for module, text in planted.items():
        copy = tmp_path / (module.replace(".", "_") + ".py")
        copy.write_text(text)
        monkeypatch.setitem(MODULES, module, copy)
    for check, expected in ((test_every_import_goes_down_or_stays_on_its_floor, "geometry.warp (floor 1) imports"),
                            (test_no_import_cycles, "dgan_tf.training.gan -> dgan_tf.training.trainer"),
                            (test_layers_models_and_geometry_import_no_tensorflow_at_module_level, "imports tensorflow")):
        try:
            check()
        except AssertionError as error:
            assert expected in str(error), str(error)
        else:
            raise AssertionError(f"{check.__name__} missed the planted violation")
