"""Shared test fixtures: paths to ../shared reference material, skipping with a reason when absent."""

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("DGAN_OFFLINE", "1")  # tests never download pretrained weights (subprocesses inherit it)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"
ANNOTATIONS_REAL = SHARED / "annotations_real"
REAL_IMAGES = SHARED / "real_images" / "walk"


def _require(path):
    if not path.exists():
        pytest.skip(f"reference material not found: {path} (the ../shared folder beside the checkout)")
    return path


@pytest.fixture(scope="session")
def annotations_real():
    """Folder of the real Market-1501 / DeepFashion annotation and pair CSVs."""
    return _require(ANNOTATIONS_REAL)


@pytest.fixture(scope="session")
def real_images():
    """Folder of the 68 real 128x64 walk photos."""
    return _require(REAL_IMAGES)


@pytest.fixture
def rng():
    """A deterministic numpy generator per test."""
    return np.random.default_rng(1234)



@pytest.fixture(scope="module")
def tiny_data_root(tmp_path_factory):
    """A tiny synthetic dataset (4 identities x 3 images) laid out where the registry expects it."""
    from dgan_tf.data.datasets import get_dataset
    from dgan_tf.data.synthetic import ensure_synthetic_dataset

    root = tmp_path_factory.mktemp("data")
    data = get_dataset("synthetic", data_root=str(root))
    ensure_synthetic_dataset(data.data_dir, image_size=data.image_size, identities=4, images_per_identity=3, seed=0)
    return str(root)

# ---- test tiers: `pytest` runs the fast tier; `pytest --all-tiers` (what CI runs) adds the slow one.

def pytest_addoption(parser):
    parser.addoption("--all-tiers", action="store_true",
                     help="also run the slow tier (tests marked slow); CI and the README's test command do")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--all-tiers"):
        _slow_modules_first(items)
        return
    if config.getoption("markexpr"):
        return  # an explicit -m expression chooses for itself
    slow = [item for item in items if item.get_closest_marker("slow")]
    if slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = [item for item in items if not item.get_closest_marker("slow")]


def _slow_modules_first(items):
    """The modules that hold slow tests run first, each kept whole (its module fixtures made once): on two cores the
    long subprocess tests then start early and the many short tests fill the end, instead of one core waiting on a
    long test at the end."""
    slow_modules = {item.module.__name__ for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.module.__name__ not in slow_modules)  # stable: collection order otherwise
