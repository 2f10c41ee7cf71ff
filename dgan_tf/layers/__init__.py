"""Custom Keras layers; importing this package registers them for `.keras` loading."""

from dgan_tf.layers.deformable_skip import DeformableSkip
from dgan_tf.layers.keypoint_guard import KeypointGuard
from dgan_tf.layers.normalization import ScalarInstanceNorm
from dgan_tf.layers.part_geometry import PartGeometry
from dgan_tf.layers.pose_heatmaps import PoseHeatmaps

__all__ = ["DeformableSkip", "KeypointGuard", "PartGeometry", "PoseHeatmaps", "ScalarInstanceNorm"]
