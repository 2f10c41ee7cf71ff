"""TensorFlow's C++ log lines, hidden unless asked for: its start-up notices (oneDNN, CUDA drivers, CPU
instructions), then "failed call to cuInit" and grappler's "remapper failed", none of which is a failure.

TF_CPP_MIN_LOG_LEVEL alone does not hide the start-up lines: TensorFlow 2.21 prints them through C++ logging before
absl is initialised, where the level is not applied. So `import dgan_tf`, the first thing every program and notebook
runs, loads Keras and TensorFlow with file descriptor 2 pointed at a temporary file, then writes back everything
captured but the log lines below the level (`without_hidden_lines`): the level's own meaning, applied to the lines
that escaped it. It also sets TF_CPP_MIN_LOG_LEVEL=3 unless the environment sets a level, which hides the later C++
lines (they come after absl is initialised and obey it). Python's output (warnings, tracebacks) is never dropped.

Shown: with `--verbose` on any program's command line or DGAN_VERBOSE=1 nothing is captured and no level is set.
"""

import os
import re
import sys
import tempfile
from contextlib import contextmanager

LEVEL_VARIABLE = "TF_CPP_MIN_LOG_LEVEL"
DEFAULT_LEVEL = "3"  # hide INFO, WARNING and ERROR C++ lines; FATAL ones (a crash) still show
VERBOSE_VARIABLE = "DGAN_VERBOSE"
VERBOSE_FLAG = "--verbose"
# absl/glog's prefix: severity, MMDD hh:mm:ss.micros (before absl is initialised "0000 00:00:<seconds since
# 1970>.micros"), thread id, file:line]
LOG_LINE = re.compile(r"^(?P<severity>[IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]\s]+:\d+\] ")
SEVERITIES = "IWEF"  # INFO, WARNING, ERROR, FATAL: TF_CPP_MIN_LOG_LEVEL 0-3 hides those below it
ABSL_HEADER = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
CONTINUATION = "To enable the following instructions:"  # the second line of cpu_feature_guard's notice


def verbose_requested(argv=None, environ=None):
    """True when the user asked for TensorFlow's lines: `--verbose` in the arguments or DGAN_VERBOSE=1."""
    argv = sys.argv[1:] if argv is None else argv
    environ = os.environ if environ is None else environ
    return VERBOSE_FLAG in argv or environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def min_level(environ=None):
    """TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (0 when unset or not a number)."""
    value = (os.environ if environ is None else environ).get(LEVEL_VARIABLE, "0").strip()
    return int(value) if value.isdigit() else 0


def without_hidden_lines(text, level):
    """`text` without the C++ log lines TF_CPP_MIN_LOG_LEVEL=`level` hides (and the absl header and notice
    continuation that go with them); every other line is kept, in order."""
    kept, hidden = [], False  # hidden: whether the last log line was
    for line in text.splitlines(keepends=True):
        match = LOG_LINE.match(line)
        if match:
            hidden = SEVERITIES.index(match["severity"]) < level
            drop = hidden
        elif line.startswith(ABSL_HEADER):
            drop = level > 0
        else:
            drop = hidden and line.startswith(CONTINUATION)
            hidden = drop
        if not drop:
            kept.append(line)
    return "".join(kept)


@contextmanager
def quiet_start():
    """Run the block (the import of Keras and TensorFlow) with its C++ log lines hidden, as the module says;
    nothing is changed when the user asked for them or TensorFlow is already loaded."""
    if verbose_requested() or "tensorflow" in sys.modules:
        yield
        return
    os.environ.setdefault(LEVEL_VARIABLE, DEFAULT_LEVEL)
    with tempfile.TemporaryFile() as capture:
        _flush()
        try:
            saved = os.dup(2)
        except OSError:  # no file descriptor 2 (a closed stderr): nothing to hide the lines from
            yield
            return
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            _flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = without_hidden_lines(capture.read().decode("utf-8", "replace"), min_level())
            if text and sys.stderr is not None:
                sys.stderr.write(text)
                _flush()


def _flush():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # a closed or replaced stream
            pass
