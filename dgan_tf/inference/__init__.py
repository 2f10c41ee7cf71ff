"""Inference: exporting a trained generator, pose transfer on a person's own images, keypoint estimation."""
