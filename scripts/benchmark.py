"""Benchmarks (speed and memory targets live here, not in timed tests).

Usage: python scripts/benchmark.py NAME [options]; NAME is a module in scripts/benchmarks/.
Each benchmark prints the machine, the command and the median of several runs.
"""

import importlib
import pkgutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
BENCH_DIR = Path(__file__).resolve().parent / "benchmarks"


def available():
    return sorted(m.name for m in pkgutil.iter_modules([str(BENCH_DIR)]) if not m.name.startswith("_"))


def main(argv):
    names = available()
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in names:
        print(__doc__)
        print("Available benchmarks:", ", ".join(names))
        return 0 if (not argv or argv[0] in ("-h", "--help")) else 2
    sys.path.insert(0, str(BENCH_DIR))
    module = importlib.import_module(argv[0])
    return module.main(argv[1:]) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
