"""No tracked text file cites the project's internal reference notes, which users of the repository do not have.

Facts about the original are cited as `pose-gan <file>:<line> at 8693ec4` (or `pose-gan gan/<file>:<line>
(submodule a4aa9a3)`); measurements and design decisions are stated where they are used.
"""

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("dgan_tf", "scripts", "tests", "notebooks", "README.md")
# Spelled in pieces so that this file does not hold the strings it looks for; the third is the section sign as
# JSON escapes it (a notebook written with ensure_ascii).
FORBIDDEN = ("S" + "PEC \u00a7", "PERFORM" + "ANCE.md", "S" + "PEC \\u00a7")


def _tracked_files():
    """The tracked files under SCANNED (git ls-files); every file there when this is not a git checkout."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--", *SCANNED], cwd=REPO_ROOT, capture_output=True,
                                check=True, timeout=30).stdout.decode("utf-8").split("\0")
        return [REPO_ROOT / name for name in listed if name]
    except (OSError, subprocess.SubprocessError):
        files = []
        for name in SCANNED:
            path = REPO_ROOT / name
            files += [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                                    and "__pycache__" not in p.parts]
        return files


def test_no_file_cites_the_internal_notes():
    this_file = Path(__file__).resolve()
    files = [path for path in _tracked_files() if path.resolve() != this_file and path.is_file()]
    assert files, "no files found to scan"
    hits = []
    for path in files:
        data = path.read_bytes()
        if b"\0" in data:
            continue  # binary (a figure)
        for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
            hits += [f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()}" for word in FORBIDDEN if word in line]
    assert not hits, ("cite the original (pose-gan <file>:<line> at 8693ec4) or state the fact instead:\n"
                      + "\n".join(hits))
