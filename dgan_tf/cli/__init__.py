"""Command-line programs; `scripts/*.py` and the `dgan-*` console entry points call their `main(argv)`."""
