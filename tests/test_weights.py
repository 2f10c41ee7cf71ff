"""Tests of dgan_tf.weights: path given, Keras cache, verified download, offline switch; never any real network.

Downloads go to file:// URLs of small files the tests write; keras.utils.get_file is replaced by a failing
stub wherever no download may happen.
"""

import dataclasses
import hashlib
import io
import os
import tarfile

import keras
import pytest

from dgan_tf import weights
from dgan_tf.evaluation import inception
from dgan_tf.models import vgg
from dgan_tf.weights import WeightFile, WeightsNotFoundError

CONTENT = b"not really weights, but bytes with a known checksum\n"
MD5 = hashlib.md5(CONTENT).hexdigest()
SHA256 = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty KERAS_HOME, downloads allowed (conftest turns them off for every other test)."""
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    return keras_home


@pytest.fixture
def no_download(monkeypatch):
    """keras.utils.get_file that fails the test if called."""
    def forbidden(*args, **kwargs):
        raise AssertionError(f"get_file must not be called here: {args} {kwargs}")
    monkeypatch.setattr(keras.utils, "get_file", forbidden)


@pytest.fixture
def source(tmp_path):
    """A small file served from a file:// URL."""
    path = tmp_path / "served" / "small_weights.h5"
    path.parent.mkdir()
    path.write_bytes(CONTENT)
    return path


def spec_for(url, file_hash=MD5, **kwargs):
    return WeightFile(file_name="small_weights.h5", url=url, what="Test weights", path_flag="--test-weights PATH",
                      file_hash=file_hash, **kwargs)


def assert_names_everything(message, spec, folder, *flags):
    for part in (spec.file_name, str(folder), spec.url, *flags):
        assert part in message, f"{part!r} not in: {message}"
    assert "\n" not in message


def test_keras_home_is_read_at_call_time(home, tmp_path, monkeypatch):
    assert weights.default_weights_path("x.h5") == str(home / "models" / "x.h5")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "other"))
    assert weights.default_weights_path("x.h5") == str(tmp_path / "other" / "models" / "x.h5")


def test_offline_switch_from_argument_and_environment(monkeypatch):
    monkeypatch.delenv(weights.OFFLINE_ENV, raising=False)
    assert not weights.offline_requested() and weights.offline_requested(True)
    for value, expected in (("1", True), ("yes", True), ("0", False), ("false", False), ("", False), ("OFF", False)):
        monkeypatch.setenv(weights.OFFLINE_ENV, value)
        assert weights.offline_requested() is expected, value


def test_cached_file_is_found_and_verified(home, no_download):
    (home / "models").mkdir()
    (home / "models" / "small_weights.h5").write_bytes(CONTENT)
    expected = str(home / "models" / "small_weights.h5")
    assert weights.resolve_weights(spec_for("https://example.invalid/small_weights.h5")) == expected
    assert weights.resolve_weights(spec_for("https://example.invalid/x", file_hash=SHA256)) == expected
    assert weights.resolve_weights(spec_for("https://example.invalid/x", file_hash=None)) == expected


def test_given_path_is_used_unverified_and_a_missing_one_is_named(home, tmp_path, no_download):
    other = tmp_path / "mine.h5"
    other.write_bytes(b"another file")
    spec = spec_for("https://example.invalid/small_weights.h5")
    assert weights.resolve_weights(spec, other) == str(other)
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights(spec, tmp_path / "nowhere.h5")
    message = str(caught.value)
    assert str(tmp_path / "nowhere.h5") in message and "--test-weights" in message and spec.file_name in message


def test_download_from_a_file_url_lands_in_the_cache(home, source, monkeypatch):
    for file_hash in (MD5, SHA256):
        spec = spec_for(source.as_uri(), file_hash=file_hash)
        path = weights.resolve_weights(spec)
        assert path == str(home / "models" / "small_weights.h5")
        assert open(path, "rb").read() == CONTENT
        assert os.listdir(home / "models") == ["small_weights.h5"], "the scratch folder is removed"
        os.remove(path)
    weights.resolve_weights(spec_for(source.as_uri()))
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("cached: no second download"))
    assert weights.resolve_weights(spec_for(source.as_uri())) == str(home / "models" / "small_weights.h5")


def test_wrong_checksum_fails_naming_file_folder_url_and_flags(home, source):
    spec = spec_for(source.as_uri(), file_hash="0" * 32)
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights(spec)
    message = str(caught.value)
    assert_names_everything(message, spec, home / "models", "--test-weights PATH", "--offline", "DGAN_OFFLINE")
    assert "could not download" in message and "hash" in message
    assert os.listdir(home / "models") == [], "no partial or corrupt file is left in the cache"


def test_unreachable_url_fails_with_the_reason(home, tmp_path):
    spec = spec_for((tmp_path / "absent.h5").as_uri())
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights(spec)
    assert_names_everything(str(caught.value), spec, home / "models", "--test-weights PATH", "--offline")
    assert "absent.h5" in str(caught.value)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_offline_never_downloads(home, no_download, monkeypatch, how):
    spec = spec_for("https://example.invalid/small_weights.h5", alternatives="or do without.")
    if how == "environment":
        monkeypatch.setenv(weights.OFFLINE_ENV, "1")
    with pytest.raises(WeightsNotFoundError) as caught:
        weights.resolve_weights(spec, offline=how == "argument")
    message = str(caught.value)
    assert_names_everything(message, spec, home / "models", "--test-weights PATH", MD5, "or do without.")
    assert ("--offline" if how == "argument" else "DGAN_OFFLINE") in message
    assert not (home / "models").exists(), "nothing is created offline"


def test_cached_file_with_a_wrong_checksum(home, source, monkeypatch):
    (home / "models").mkdir()
    cached = home / "models" / "small_weights.h5"
    cached.write_bytes(b"truncated")
    spec = spec_for(source.as_uri())
    real_get_file = keras.utils.get_file
    monkeypatch.setattr(keras.utils, "get_file", lambda *a, **k: pytest.fail("offline: no download"))
    with pytest.raises(WeightsNotFoundError, match="is not the published") as caught:
        weights.resolve_weights(spec, offline=True)
    assert str(cached) in str(caught.value) and cached.read_bytes() == b"truncated"
    monkeypatch.setattr(keras.utils, "get_file", real_get_file)
    assert weights.resolve_weights(spec) == str(cached) and cached.read_bytes() == CONTENT  # replaced, verified


def _tgz(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_member_is_extracted_into_the_cache(home, tmp_path):
    archive = _tgz(tmp_path / "bundle-2015.tgz", {"small_weights.h5": CONTENT, "LICENSE": b"x"})
    spec = spec_for(archive.as_uri(), file_hash=None, archive_member="small_weights.h5")
    assert weights.resolve_weights(spec) == str(home / "models" / "small_weights.h5")
    assert (home / "models" / "small_weights.h5").read_bytes() == CONTENT
    assert os.listdir(home / "models") == ["small_weights.h5"], "archive and scratch folder are removed"
    wrong = _tgz(tmp_path / "other.tgz", {"LICENSE": b"x"})
    os.remove(home / "models" / "small_weights.h5")
    with pytest.raises(WeightsNotFoundError, match="does not hold small_weights.h5"):
        weights.resolve_weights(dataclasses.replace(spec, url=wrong.as_uri()))


def test_vgg19_and_keras_inception_specs(home, no_download):
    assert vgg.VGG19_NOTOP.file_hash == "253f8cb515780f3b799900260a226db6"  # keras/src/applications/vgg19.py
    assert inception.KERAS_INCEPTION_V3.file_hash == "9a0d58056eeedaa3f26cb7ebd46da564"  # inception_v3.py
    with pytest.raises(WeightsNotFoundError) as caught:
        vgg.resolve_vgg19_weights(offline=True)
    assert_names_everything(str(caught.value), vgg.VGG19_NOTOP, home / "models", "--vgg-weights PATH",
                            "--features pixels", "--offline")
    with pytest.raises(WeightsNotFoundError) as caught:
        inception.resolve_weights_path(offline=True)
    assert_names_everything(str(caught.value), inception.KERAS_INCEPTION_V3, home / "models",
                            "--inception-weights PATH", "--offline")
