"""Atomic file writes: a temporary file in the same folder, flushed and fsynced, then renamed.

A reader (or a resumed run after a kill) sees the old file or the new one, never half of one. A kill
during a write leaves a temporary `.NAME.XXXXXXXX.tmp` sibling; `remove_partial_files` clears them.
A full disk or a folder that cannot be written gives a `WriteError` that names the file and what to do.
"""

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

# tempfile.mkstemp(prefix=".NAME.", suffix=".tmp") adds 8 characters from [a-z0-9_].
_PARTIAL = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


class WriteError(OSError):
    """A file could not be written (full disk, read-only or missing folder); the message says which and what to do."""

    def __str__(self):
        return self.strerror


def _errno_of(error):
    """The errno of an OSError, or of an error TensorFlow raised while writing (its file system reports a full disk
    as ResourceExhaustedError and a refused write as PermissionDeniedError, neither an OSError); else None."""
    if isinstance(error, OSError):
        return error.errno
    text = str(error)
    if "No space left on device" in text or "Disk quota exceeded" in text:
        return errno.ENOSPC
    if "Read-only file system" in text:
        return errno.EROFS
    if type(error).__name__ == "PermissionDeniedError" or "Permission denied" in text:
        return errno.EACCES
    return None


def write_error(error, path, folder=None):
    """An error raised while writing `path` (an OSError, or TensorFlow's for a full disk or a refused write) -> a
    WriteError naming the file and the fix; other errors are returned unchanged. folder: the folder to name (default
    the file's)."""
    code = _errno_of(error)
    if isinstance(error, WriteError) or (code is None and not isinstance(error, OSError)):
        return error
    path = Path(path)
    folder = path.parent if folder is None else Path(folder)
    if code == errno.ENOSPC or code == errno.EDQUOT:
        message = (f"No space left on device while writing {path}; free space under {folder} and run the same "
                   "command again (a training run resumes from its last complete checkpoint)")
    elif code in (errno.EACCES, errno.EPERM, errno.EROFS):
        message = (f"cannot write {path}: the folder {folder} is read-only or not writable by this user "
                   f"({os.strerror(code)}); choose another output folder or fix its permissions")
    else:
        message = f"cannot write {path}: {os.strerror(code) if code else error}"
    return WriteError(code or errno.EIO, message, str(path))


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb", durable=True, **kwargs):
    """Open a temporary sibling of `path` for writing; on success it replaces `path`, else it is removed.

    durable: fsync before the rename, so that the file also survives a power cut (checkpoints, configs);
    outputs written by the thousand (evaluation images) skip it: the rename alone is atomic.
    An OSError while writing (full disk, read-only folder) is raised as a WriteError naming `path`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise write_error(error, path) from None
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(error, OSError):
            raise write_error(error, path) from None
        raise


def atomic_write_text(path, text):
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path, data, durable=True):
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)
    return Path(path)


def is_partial_file(name):
    """True for the name of a temporary file that `atomic_open` leaves when its process is killed."""
    return bool(_PARTIAL.match(name))


def remove_partial_files(folder):
    """Delete the temporary files of interrupted atomic writes directly in `folder`; returns their paths."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and is_partial_file(entry.name):
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
            removed.append(entry)
    return removed
