"""Evaluation: scores of generated images."""
