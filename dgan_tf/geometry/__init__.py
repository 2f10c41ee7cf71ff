"""Geometry from keypoints, in keras.ops only: the joint layout, pose heatmaps, part masks and affine transforms, the part warp."""
