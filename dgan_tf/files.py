"""Atomic file writes: a temporary file in the same folder, flushed and fsynced, then renamed.

A reader (or a resumed run after a kill) sees the old file or the new one, never half of one.
"""

import contextlib
import os
import tempfile
from pathlib import Path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path, mode="wb", durable=True, **kwargs):
    """Open a temporary sibling of `path` for writing; on success it replaces `path`, else it is removed.

    durable: fsync before the rename, so that the file also survives a power cut (checkpoints, configs);
    outputs written by the thousand (evaluation images) skip it: the rename alone is atomic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path, text):
    with atomic_open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(path, data, durable=True):
    with atomic_open(path, "wb", durable=durable) as f:
        f.write(data)
    return Path(path)
