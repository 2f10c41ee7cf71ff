"""One trainer per run folder: a lock file, RUN/train.lock, that names its holder (PID, host, start, command).

`RunLock(folder).acquire()` (or `Run.lock()`, a context manager) takes it, or raises RunInUse naming the holder.
A caller decides whether to take it: train.py does; a multi-worker job would have only its chief take it.

The lock is the file's content plus, where the file system supports it, an flock(2) on it: the kernel releases an
flock when its process ends, even by kill -9, so on one machine a lock is stale exactly when nobody holds its
flock. Where the holder cannot be checked that way (flock unsupported, or the holder runs on another host sharing
the folder), the lock is stale when its process is gone (same host) or, for another host, when the file was not
refreshed for STALE_AFTER_S: the holder refreshes it at most every REFRESH_EVERY_S while it trains. A stale lock is
replaced, with a note saying whose it was.
"""

import contextlib
import datetime
import json
import os
import socket
import sys
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: the content and the PID alone decide
    fcntl = None

LOCK_FILE = "train.lock"
STALE_AFTER_S = 3600  # another host's lock not refreshed for an hour: its trainer is gone
REFRESH_EVERY_S = 60


class RunInUse(ValueError):
    """Another live process holds the run folder's lock; the message names it and the lock file."""


def process_running(pid):
    """True when a process with this PID exists on this machine (one of another user counts)."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, and belongs to someone else
        return True
    return True


def _read_holder(path):
    """The lock file's content as a dict (empty when unreadable or not ours)."""
    try:
        holder = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _describe(holder):
    where = "this machine" if holder.get("host") == socket.gethostname() else f"host {holder.get('host', '?')}"
    command = f", running {holder['command']}" if holder.get("command") else ""
    return f"process {holder.get('pid', '?')} on {where} (since {holder.get('started', '?')}{command})"


class RunLock:
    """The lock of one run folder; `acquire()` takes it, `release()` (or leaving the `with` block) frees it."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.replaced = None  # the holder of a stale lock that acquire() replaced, as a sentence; else None
        self._fd = None
        self._created_folder = False
        self._refreshed = 0.0

    def acquire(self):
        if not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._created_folder = True
        for _ in range(5):  # a release between our open and our flock unlinks the file: open it again
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if self._take(fd):
                    self._fd = fd
                    self._refreshed = time.monotonic()
                    return self
            except BaseException:
                os.close(fd)
                self._remove_created_folder()
                raise
            os.close(fd)
        raise RunInUse(f"{self.path} keeps changing: another trainer is starting in {self.folder}")

    def _take(self, fd):
        """Write our content into the open lock file when nobody live holds it; False to retry with a new file."""
        flocked = False
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                raise self._in_use(_read_holder(self.path)) from None
            except OSError:  # no flock on this file system: the content decides
                pass
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:
                return False
        except FileNotFoundError:
            return False
        holder = _read_holder(self.path)
        if holder:
            if self._alive(holder, flocked):
                raise self._in_use(holder)
            self.replaced = (f"replaced the lock of {_describe(holder)}, which is no longer running "
                             f"({self.path})")
        content = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                              "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "command": " ".join(sys.argv)[:300]})
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, content.encode("utf-8"))
        os.fsync(fd)
        return True

    def _alive(self, holder, flocked):
        """Whether the holder written in the file still runs."""
        if holder.get("host") != socket.gethostname():
            try:
                age = time.time() - os.stat(self.path).st_mtime
            except FileNotFoundError:
                return False
            return age < STALE_AFTER_S
        if flocked:
            return False  # its process would hold the flock: the kernel dropped it when the process ended
        pid = holder.get("pid")
        return pid != os.getpid() and process_running(pid)

    def _in_use(self, holder):
        stale = (f"a lock of another host counts as stale {STALE_AFTER_S // 60} minutes after its last refresh"
                 if holder.get("host") != socket.gethostname() else "")
        return RunInUse(
            f"{self.folder} is in use by another trainer: {_describe(holder) if holder else 'a process'}; lock file "
            f"{self.path}. Two trainers in one run folder would overwrite each other's checkpoints: wait for it to "
            f"finish or stop it, or train into another --run folder. If no trainer runs there (one that crashed on "
            f"another machine), delete {self.path}" + (f" ({stale})." if stale else "."))

    def refresh(self):
        """Touch the lock file (at most every REFRESH_EVERY_S), so that another host sees its holder alive."""
        if self._fd is not None and time.monotonic() - self._refreshed >= REFRESH_EVERY_S:
            with contextlib.suppress(OSError):
                os.utime(self.path)
            self._refreshed = time.monotonic()

    def release(self):
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            if os.fstat(self._fd).st_ino == os.stat(self.path).st_ino:
                os.unlink(self.path)  # while still flocked: the next trainer finds no file, or a new one
        os.close(self._fd)
        self._fd = None
        self._remove_created_folder()

    def _remove_created_folder(self):
        """A refused or finished start in a folder it created leaves no empty folder behind."""
        if self._created_folder:
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty
            self._created_folder = False

    def __enter__(self):
        return self.acquire() if self._fd is None else self

    def __exit__(self, *exc_info):
        self.release()
