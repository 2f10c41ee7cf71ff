"""Pretrained weight files (VGG19, InceptionV3, the 2015 Inception graph), found or fetched as Keras does.

Order of look-up, for every file:
1. a path the user gave (a flag such as --vgg-weights PATH): it must exist; it is used as is, unverified;
2. the Keras cache, <keras home>/models/<file> (keras home: $KERAS_HOME, else ~/.keras), verified against
   the published checksum when there is one (a mismatching file is not used: see 3);
3. unless downloads are off, a download from the official URL with `keras.utils.get_file`, checksum
   verified, into a scratch folder beside the cache and moved into place only once verified, so a failed or
   interrupted download never leaves a partial file in the cache (a mismatching cached file is replaced,
   as Keras's own get_file would do).
Downloads are off when the caller passes offline=True (the CLI's --offline) or when the environment
variable DGAN_OFFLINE is set to anything but "", "0", "false", "no" or "off". Keras itself has no such
switch. Every failure raises WeightsNotFoundError naming the file, the folder, the URL and the flags.
"""

import dataclasses
import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.parse

OFFLINE_ENV = "DGAN_OFFLINE"
OFFLINE_FLAG = "--offline"
_FALSE_WORDS = ("", "0", "false", "no", "off")


class WeightsNotFoundError(FileNotFoundError):
    """A pretrained weight file could not be found or fetched; the message says what goes where."""


class WeightsFileError(ValueError):
    """A weight file that exists but is not the one expected (not HDF5, truncated, another network's)."""


@dataclasses.dataclass(frozen=True)
class WeightFile:
    """One pretrained file: its name in the Keras cache, where it comes from and how a user supplies it.

    file_name: name in <keras home>/models; url: the official URL of the file, or of the .tgz holding it
    when archive_member is set; file_hash: the published md5 (32 hex digits) or sha256 (64) of what the URL
    serves, None when none is published; what: words for messages ("VGG19 ImageNet weights (no top)");
    path_flag: the CLI flag that gives a path ("--vgg-weights PATH"); python_argument: the same in Python;
    alternatives: an optional last sentence ("or train without VGG with --features pixels.").
    """

    file_name: str
    url: str
    what: str
    path_flag: str
    file_hash: str = None
    archive_member: str = None
    python_argument: str = "weights_path"
    alternatives: str = ""

    @property
    def hash_algorithm(self):
        return None if self.file_hash is None else ("md5" if len(self.file_hash) == 32 else "sha256")

    @property
    def hash_note(self):
        """' (md5 253f...)' or '' when no checksum is published."""
        return "" if self.file_hash is None else f" ({self.hash_algorithm} {self.file_hash})"


def keras_home():
    """The Keras folder, as Keras resolves it: $KERAS_HOME, else ~/.keras (/tmp/.keras if ~ is read-only).

    Read at call time (Keras reads it once at import), so a changed KERAS_HOME is honoured.
    """
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def default_weights_path(file_name):
    """Where Keras keeps a downloaded weight file: <keras home>/models/<file_name>."""
    return os.path.join(keras_home(), "models", file_name)


def offline_requested(offline=False):
    """True when downloads are off: offline=True (the --offline flag) or $DGAN_OFFLINE set to a true value."""
    return bool(offline) or os.environ.get(OFFLINE_ENV, "").strip().lower() not in _FALSE_WORDS


_DIGESTS = {}  # (path, size, mtime_ns, algorithm) -> hex digest: a cached file is hashed once per process


def file_digest(path, algorithm):
    """Hex md5 or sha256 of a file, memoised on (path, size, mtime)."""
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns, algorithm)
    if key not in _DIGESTS:
        hasher = hashlib.new(algorithm)
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                hasher.update(chunk)
        _DIGESTS[key] = hasher.hexdigest()
    return _DIGESTS[key]


def _one_line(error):
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _supply_sentence(spec):
    sentence = f"pass its location with {spec.path_flag} ({spec.python_argument}=PATH in Python)"
    return f"{sentence}; {spec.alternatives}" if spec.alternatives else f"{sentence}."


def _offline_reason(offline):
    if offline:
        return f"downloads are off ({OFFLINE_FLAG})"
    return f"downloads are off (${OFFLINE_ENV}={os.environ.get(OFFLINE_ENV)!r})"


def resolve_weights(spec, weights_path=None, offline=False):
    """Path of the file `spec` describes: `weights_path` if given, else the Keras cache, else a download.

    Raises WeightsNotFoundError: `weights_path` missing; or the file neither cached (with a matching
    checksum) nor downloadable, because downloads are off (offline=True or $DGAN_OFFLINE) or the download
    failed (no network, checksum mismatch, not an archive holding the file).
    """
    if weights_path is not None:
        path = os.path.abspath(os.path.expanduser(str(weights_path)))
        if os.path.isfile(path):
            return path
        raise WeightsNotFoundError(
            f"{spec.what} not found: {path} (given with {spec.path_flag.split()[0]}) does not exist. "
            f"Give the path of {spec.file_name}, or leave the flag out to use the Keras cache "
            f"{os.path.dirname(default_weights_path(spec.file_name))} (downloaded from {spec.url} when absent).")
    cached = default_weights_path(spec.file_name)
    folder = os.path.dirname(cached)
    mismatch = None
    if os.path.isfile(cached):
        if spec.file_hash is None or spec.archive_member is not None:
            return cached  # nothing published to check it against (an archive's hash is not the member's)
        if file_digest(cached, spec.hash_algorithm) == spec.file_hash:
            return cached
        mismatch = (f"{cached} is there but its {spec.hash_algorithm} is not the published {spec.file_hash} "
                    f"(incomplete or another file)")
    if offline_requested(offline):
        found = mismatch if mismatch else f"{spec.file_name} is not in {folder} (the Keras cache, $KERAS_HOME/models)"
        raise WeightsNotFoundError(
            f"{spec.what} not found, and {_offline_reason(offline)}: {found}. "
            f"Download {spec.url}{spec.hash_note} "
            f"{'and extract ' + spec.archive_member + ' from it ' if spec.archive_member else ''}into {folder}, "
            f"or drop {OFFLINE_FLAG} / unset {OFFLINE_ENV} to download it, or {_supply_sentence(spec)}")
    if mismatch:
        print(f"{mismatch}: downloading it again from {spec.url}")
    return _download(spec, cached)


def _download(spec, cached):
    """Fetch spec.url with keras.utils.get_file into a scratch folder beside `cached`, verify, move in place."""
    folder = os.path.dirname(cached)

    def failure(reason):
        return WeightsNotFoundError(
            f"{spec.what}: could not download {spec.file_name} from {spec.url} into {folder}: {reason}. "
            f"Put {spec.file_name} there yourself{spec.hash_note if not spec.archive_member else ''}"
            f"{' (extract it from the archive at that URL)' if spec.archive_member else ''}, "
            f"or {_supply_sentence(spec)} {OFFLINE_FLAG} (or {OFFLINE_ENV}=1) skips download attempts.")

    try:
        os.makedirs(folder, exist_ok=True)
        scratch = tempfile.mkdtemp(prefix=".download-", dir=folder)
    except OSError as error:
        raise failure(_one_line(error)) from error
    try:
        import keras  # looked up at call time, so tests can replace keras.utils.get_file

        name = os.path.basename(urllib.parse.urlsplit(spec.url).path) if spec.archive_member else spec.file_name
        try:
            downloaded = keras.utils.get_file(
                fname=name, origin=spec.url, file_hash=spec.file_hash, cache_subdir=scratch, cache_dir=folder)
        except Exception as error:  # no network, HTTP error, checksum mismatch: one line, with the cause chained
            raise failure(_one_line(error)) from error
        if spec.archive_member:
            downloaded = _extract_member(downloaded, spec.archive_member, os.path.join(scratch, spec.file_name),
                                         failure)
        os.replace(downloaded, cached)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cached


def load_weight_file(model, spec, path):
    """model.load_weights(path) for the file `spec` describes; WeightsFileError naming the file, what was expected
    and where it comes from, instead of h5py's "file signature not found" or Keras's layer-count errors."""
    try:
        model.load_weights(path)
    except Exception as error:  # h5py, Keras and OS errors alike: the file is not the one expected
        raise WeightsFileError(
            f"{path} could not be loaded as {spec.what} ({_one_line(error)}): expected {spec.file_name}, the file "
            f"published at {spec.url}{spec.hash_note}. Give that file with {spec.path_flag.split()[0]}, or leave the "
            f"flag out to use the Keras cache {os.path.dirname(default_weights_path(spec.file_name))}.") from None
    return model


def _extract_member(archive, member_name, target, failure):
    """Copy one regular file out of a tar archive to `target` (nothing else is extracted)."""
    try:
        with tarfile.open(archive) as tar:
            member = tar.getmember(member_name)
            if not member.isfile():
                raise KeyError(f"{member_name} is not a regular file in the archive")
            with tar.extractfile(member) as source, open(target, "wb") as sink:
                shutil.copyfileobj(source, sink)
    except (tarfile.TarError, KeyError, OSError) as error:
        raise failure(f"the archive does not hold {member_name} ({_one_line(error)})") from error
    return target
