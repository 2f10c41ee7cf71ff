"""Read and write the original's keypoint annotation and pair CSVs, with errors that name file and line.

Annotation CSV (pose-gan compute_coordinates.py:216, 224 at 8693ec4): `:`-separated, header
`name:keypoints_y:keypoints_x`, each coordinate field a JSON list of 18 integers (row y, then column x; -1 = missing
joint). Pair CSV (create_pairs_dataset.py:26-28, 38): plain CSV, header `from,to`.
"""

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dgan_tf.files import atomic_write_text
from dgan_tf.geometry.keypoints import MISSING, NUM_JOINTS
from dgan_tf.images import ImageSize

ANNOTATION_COLUMNS = ("name", "keypoints_y", "keypoints_x")
PAIR_COLUMNS = ("from", "to")
MAX_REPORTED_ROWS = 5
_INT32_MAX = 2**31 - 1


class AnnotationError(ValueError):
    """A malformed annotation or pair file; the message names the file and the 1-based line(s)."""

    def __init__(self, message, path=None, lines=()):
        super().__init__(message)
        self.path = path
        self.lines = tuple(lines)


@dataclass(frozen=True)
class KeypointTable:
    """Image names and their (N, 18, 2) int32 keypoints in (row y, column x) order, -1 = missing."""

    names: tuple
    keypoints_yx: np.ndarray  # (N, 18, 2) int32
    _row_of: dict = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        names = tuple(str(n) for n in self.names)
        keypoints = np.array(self.keypoints_yx, dtype=np.int32, copy=True)
        if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_JOINTS, 2) or len(keypoints) != len(names):
            raise ValueError(
                f"keypoints_yx must have shape ({len(names)}, {NUM_JOINTS}, 2) to match {len(names)} names. "
                f"Received: keypoints_yx.shape={keypoints.shape}"
            )
        row_of = {}
        for row, name in enumerate(names):
            if name in row_of:
                raise ValueError(f"Duplicate image name in KeypointTable. Received: name={name!r}")
            row_of[name] = row
        keypoints.setflags(write=False)  # frozen means frozen: shared views stay consistent
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "keypoints_yx", keypoints)
        object.__setattr__(self, "_row_of", row_of)

    def __len__(self):
        return len(self.names)

    def __contains__(self, name):
        return name in self._row_of

    def index_of(self, name):
        """Row of `name`; a KeyError that says which name is unknown."""
        try:
            return self._row_of[name]
        except KeyError:
            raise KeyError(f"No annotation for image name={name!r} ({len(self)} names in the table)") from None

    def get(self, name):
        """The (18, 2) keypoints (row y, column x) of `name`."""
        return self.keypoints_yx[self.index_of(name)]


# ---------------------------------------------------------------------------------------------------
# Shared helpers


def _read_text(path, kind):
    """File contents as text, or an AnnotationError for a missing, unreadable or empty file."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"{kind} file not found: {path}", path=path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{kind} file {path} is not UTF-8 text ({e})", path=path) from None
    if not text.strip():
        raise AnnotationError(f"{kind} file {path} is empty (expected a header line)", path=path)
    return text


def _check_header(path, text, sep, expected, kind):
    header = [h.strip() for h in text.splitlines()[0].split(sep)]
    if tuple(header) != expected:
        raise AnnotationError(
            f"{path}, line 1: wrong header for a {kind} file: expected {sep.join(expected)!r}, "
            f"received {text.splitlines()[0]!r}",
            path=path,
            lines=(1,),
        )


def _raise_bad_rows(path, problems, kind):
    """Raise one AnnotationError listing the first few (line, problem) pairs on one line."""
    shown = "; ".join(f"line {line}: {problem}" for line, problem in problems[:MAX_REPORTED_ROWS])
    more = len(problems) - MAX_REPORTED_ROWS
    suffix = f"; and {more} more bad rows" if more > 0 else ""
    raise AnnotationError(f"Invalid {kind} file {path}: {shown}{suffix}", path=path, lines=[p[0] for p in problems])


def _field_count_problems(text, count_fields, expected):
    """(line, problem) for every non-blank line whose number of fields differs from `expected`."""
    problems = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if line_no == 1 or not line.strip():
            continue
        n = count_fields(line)
        if n != expected:
            problems.append((line_no, f"expected {expected} fields, found {n}"))
    return problems


def _read_frame(path, text, sep, quoting, columns, kind):
    """All rows as strings; row i of the frame is line i + 2 of the file (blank lines kept as '')."""
    try:
        return pd.read_csv(
            io.StringIO(text), sep=sep, dtype=str, na_filter=False, quoting=quoting,
            skip_blank_lines=False, header=0, names=list(columns),
        )
    except pd.errors.ParserError as e:
        if sep == ":":
            count = lambda line: line.count(":") + 1  # noqa: E731
        else:
            count = lambda line: len(next(csv.reader([line])))  # noqa: E731
        problems = _field_count_problems(text, count, len(columns))
        if problems:
            _raise_bad_rows(path, problems, kind)
        raise AnnotationError(f"Invalid {kind} file {path}: {e}", path=path) from None


# ---------------------------------------------------------------------------------------------------
# Annotations


def _parse_coordinates(field_text, column):
    """The 18 integers of one coordinate field, or a string saying what is wrong with it."""
    if not field_text.strip():
        return f"{column} is empty (expected 3 ':'-separated fields name:keypoints_y:keypoints_x)"
    try:
        values = json.loads(field_text)
    except json.JSONDecodeError:
        return f"{column} is not a JSON list: {field_text.strip()[:60]!r}"
    if not isinstance(values, list):
        return f"{column} is not a list: {field_text.strip()[:60]!r}"
    if len(values) != NUM_JOINTS:
        return f"{column} has {len(values)} values, expected {NUM_JOINTS}"
    for joint, v in enumerate(values):
        if type(v) is not int:  # bool is a subclass of int: excluded on purpose, like 3.0 and "3"
            return f"{column}[{joint}] = {v!r} is not an integer"
        if v < MISSING or v > _INT32_MAX:
            return f"{column}[{joint}] = {v} is out of range (pixel index >= 0, or -1 for a missing joint)"
    return values


def _geometry_problems(keypoints, image_size):
    """{row index: what is wrong} for (N, 18, 2) keypoints: one coordinate missing, or a joint outside the image."""
    missing = keypoints == MISSING  # (N, 18, 2)
    problems = {}
    half = missing[..., 0] != missing[..., 1]  # (N, 18)
    for row, joint in zip(*np.nonzero(half)):
        problems.setdefault(int(row), f"joint {joint} has only one coordinate missing (y={keypoints[row, joint, 0]}, "
                                      f"x={keypoints[row, joint, 1]}); use -1 for both")
    if image_size is not None:
        height, width = image_size
        outside = ~missing[..., 0] & ((keypoints[..., 0] >= height) | (keypoints[..., 1] >= width))  # (N, 18)
        for row, joint in zip(*np.nonzero(outside)):
            problems.setdefault(int(row), f"joint {joint} at (y={keypoints[row, joint, 0]}, x={keypoints[row, joint, 1]}) "
                                          f"is outside the {height}x{width} image (0 <= y < {height}, 0 <= x < {width})")
    return problems


def read_annotations(path, image_size=None):
    """Read an annotation CSV into a KeypointTable; any bad row raises AnnotationError naming file and line.

    image_size=(H, W) also checks every present joint lies inside the image. One validator: each field's
    syntax row by row, then the geometry of all rows at once.
    """
    kind = "annotation"
    image_size = None if image_size is None else ImageSize.of(image_size)
    text = _read_text(path, kind)
    _check_header(path, text, ":", ANNOTATION_COLUMNS, kind)
    frame = _read_frame(path, text, ":", csv.QUOTE_NONE, ANNOTATION_COLUMNS, kind)
    problems, names, lines, rows, first_line_of = [], [], [], [], {}
    for i, (name, ys, xs) in enumerate(frame.itertuples(index=False, name=None)):
        line = i + 2
        if not (name.strip() or ys.strip() or xs.strip()):
            continue  # blank line
        if not name.strip():
            problems.append((line, "empty image name"))
            continue
        if name in first_line_of:
            problems.append((line, f"duplicate image name {name!r} (first on line {first_line_of[name]})"))
            continue
        first_line_of[name] = line
        y = _parse_coordinates(ys, "keypoints_y")
        x = _parse_coordinates(xs, "keypoints_x") if not isinstance(y, str) else None
        error = y if isinstance(y, str) else x if isinstance(x, str) else None
        if error is not None:
            problems.append((line, f"{error} (image {name!r})"))
            continue
        names.append(name)
        lines.append(line)
        rows.append((y, x))
    keypoints = np.asarray(rows, dtype=np.int64).reshape(-1, 2, NUM_JOINTS).transpose(0, 2, 1)  # (N, 18, 2)
    for row, message in _geometry_problems(keypoints, image_size).items():
        problems.append((lines[row], f"{message} (image {names[row]!r})"))
    if problems:
        _raise_bad_rows(path, sorted(problems), kind)
    if not names:
        raise AnnotationError(f"annotation file {path} has a header but no annotation rows", path=path)
    return KeypointTable(tuple(names), keypoints.astype(np.int32))


def _check_names(names, what):
    bad = [n for n in names if not isinstance(n, str) or not n or ":" in n or "\n" in n or "\r" in n
           or n != n.strip()]
    if bad:
        raise ValueError(f"{what} must be non-empty strings without ':', line breaks or surrounding spaces. "
                         f"Received: {bad[0]!r}")


def write_annotations(path, names, keypoints_yx):
    """Atomically write an annotation CSV in exactly the original's format (readable by its pandas + json reader)."""
    names = list(names)
    _check_names(names, "names")
    keypoints = np.asarray(keypoints_yx)
    if keypoints.shape != (len(names), NUM_JOINTS, 2):
        raise ValueError(f"keypoints_yx must have shape ({len(names)}, {NUM_JOINTS}, 2). "
                         f"Received: keypoints_yx.shape={keypoints.shape}")
    if not np.issubdtype(keypoints.dtype, np.integer):
        raise ValueError(f"keypoints_yx must hold integers (pixel indices); round them first. "
                         f"Received: dtype={keypoints.dtype}")
    if len(set(names)) != len(names):
        raise ValueError("names must be unique. Received duplicates: "
                         f"{sorted({n for n in names if names.count(n) > 1})[:5]}")
    below = np.flatnonzero((keypoints < MISSING).any(axis=(1, 2)))
    if below.size:
        raise ValueError(f"keypoints_yx has a value below -1 for name={names[below[0]]!r}")
    for row, problem in _geometry_problems(keypoints, None).items():
        raise ValueError(f"keypoints_yx for name={names[row]!r}: {problem}")
    lines = [":".join(ANNOTATION_COLUMNS)]
    for name, kp in zip(names, keypoints.tolist()):
        ys = ", ".join(str(j[0]) for j in kp)
        xs = ", ".join(str(j[1]) for j in kp)
        lines.append(f"{name}: [{ys}]: [{xs}]")
    atomic_write_text(path, "\n".join(lines) + "\n")


# ---------------------------------------------------------------------------------------------------
# Pairs


def read_pairs(path, known_names=None):
    """Read a pair CSV into a DataFrame with str columns `from`, `to`; bad rows raise AnnotationError.

    known_names (any collection of image names) also checks every pair names annotated images.
    """
    kind = "pair"
    text = _read_text(path, kind)
    _check_header(path, text, ",", PAIR_COLUMNS, kind)
    frame = _read_frame(path, text, ",", csv.QUOTE_MINIMAL, PAIR_COLUMNS, kind)
    lines = np.arange(len(frame)) + 2
    blank = (frame["from"].str.strip() == "") & (frame["to"].str.strip() == "")
    frame, lines = frame[~blank.to_numpy()], lines[~blank.to_numpy()]

    problems = []
    for column in PAIR_COLUMNS:
        empty = (frame[column].str.strip() == "").to_numpy()
        problems += [(int(line), f"empty '{column}' name (expected 2 fields from,to)") for line in lines[empty]]
    if known_names is not None:
        known = set(known_names)
        for column in PAIR_COLUMNS:
            unknown = (~frame[column].isin(known) & (frame[column].str.strip() != "")).to_numpy()
            problems += [(int(line), f"'{column}' image {name!r} has no annotation")
                         for line, name in zip(lines[unknown], frame[column].to_numpy()[unknown])]
    if problems:
        _raise_bad_rows(path, sorted(problems), kind)
    return frame.reset_index(drop=True)


def write_pairs(path, pairs_df):
    """Atomically write a pair CSV with header `from,to`."""
    missing = [c for c in PAIR_COLUMNS if c not in getattr(pairs_df, "columns", ())]
    if missing:
        raise ValueError(f"pairs_df must be a DataFrame with columns 'from' and 'to'. Missing: {missing}")
    frame = pairs_df[list(PAIR_COLUMNS)].astype(str)
    for column in PAIR_COLUMNS:
        values = frame[column].tolist()
        bad = [n for n in values if not n or "\n" in n or "\r" in n]
        if bad:
            raise ValueError(f"pairs_df['{column}'] must hold non-empty names without line breaks. Received: {bad[0]!r}")
    atomic_write_text(path, frame.to_csv(index=False, lineterminator="\n"))
