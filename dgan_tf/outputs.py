"""Output paths, checked before any work: every program that writes calls these first, so that a run, an export or
a transfer never fails at its first write after minutes of work, and never writes over what it reads.

The rules (OutputPathError, a ValueError that names the flag and the path; a folder that cannot be written gives
files.WriteError's message):
  - a file is not a folder and a folder is not a file, including the files and folders a program writes inside its
    output folder (RUN/checkpoints, exports/dgan, ...);
  - no output lies under a file (a parent that is a file);
  - no output is one of the program's inputs (the same path, or the same file through a link);
  - a file named on the command line that exists is replaced only with --force (`force=True`); a program's own
    regenerable files inside its output folder (metrics.json, samples) are replaced without it;
  - the nearest existing folder is writable by this user.
"""

import errno
import os
from pathlib import Path

from dgan_tf.files import write_error

FORCE_FLAG = "--force"


class OutputPathError(ValueError):
    """An output path that cannot or must not be written; the message names the flag, the path and what to do."""


def _blocking_file(path):
    """The nearest parent of `path` that exists and is not a folder (a file above the output), or None."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def _check_writable(path):
    """A WriteError (EACCES, the files.write_error message) when the nearest existing folder cannot be written."""
    folder = path if path.is_dir() else next((p for p in path.parents if p.is_dir()), None)
    if folder is not None and not os.access(folder, os.W_OK | os.X_OK):
        raise write_error(PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path)), path, folder=folder)


def _check_place(path, what):
    blocker = _blocking_file(path)
    if blocker is not None:
        raise OutputPathError(f"{what} {path} cannot be written: {blocker} is a file, not a folder; give a path "
                              "outside it")


def _same_file(a, b):
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()


def _labelled(inputs):
    """[(label, Path)] from (label, path) pairs or plain paths ('an input')."""
    return [(item[0], Path(item[1])) if isinstance(item, tuple) else ("an input", Path(item)) for item in inputs]


def _check_not_an_input(path, what, inputs):
    for label, source in _labelled(inputs):
        if _same_file(path, source):
            shown = label if str(source) in label else f"{label} ({source})"
            raise OutputPathError(f"{what} {path} is {shown}: writing there would replace it; give another path")


def check_output_file(path, what, *, inputs=(), force=False):
    """Refuse, before any work, to write the file `path`: a folder there, a file above it, one of `inputs`, an
    existing file without `force`, a folder that cannot be written. Returns Path(path).

    what: how messages name it ("--output"); inputs: the program's input files, as paths or (label, path) pairs
    ("the input annotation file", path).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputPathError(f"{what} {path} is a folder; give the path of the file to write")
    _check_place(path, what)
    _check_not_an_input(path, what, inputs)
    if not force and (path.exists() or path.is_symlink()):
        raise OutputPathError(f"{what} {path} exists; add {FORCE_FLAG} to replace it")
    _check_writable(path)
    return path


def check_output_folder(path, what, *, files=(), folders=(), inputs=()):
    """Refuse, before any work, to write into the folder `path` (created when absent): a file there or above it,
    a folder among `files` or a file among `folders` (names inside it that the program writes), an input among
    `files`, a folder that cannot be written. Returns Path(path).

    The program's own files inside the folder are replaced without --force: they are what it writes every run.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"{what} {path} is a file, not a folder; give a folder (it is created when absent)")
    _check_place(path, what)
    for name in folders:
        inside = path / name
        if inside.exists() and not inside.is_dir():
            raise OutputPathError(f"{what} {path}: {inside} is a file, but this program writes a folder of that name "
                                  f"there; move the file away or give another {what}")
    for name in files:
        inside = path / name
        if inside.is_dir():
            raise OutputPathError(f"{what} {path}: {inside} is a folder, but this program writes a file of that name "
                                  f"there; move the folder away or give another {what}")
        _check_not_an_input(inside, what, inputs)
    _check_writable(path)
    return path
