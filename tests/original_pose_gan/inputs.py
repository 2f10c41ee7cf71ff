"""The original's network inputs for one pair, in numpy, as Python 2 computed them (test-only).

- cords_to_map: pose-gan pose_utils.py:52-59 at 8693ec4. The original ran Python 2 on integer JSON
  keypoints and integer meshgrids, so its `/` floor-divided: written `//` here. np.exp takes the float64
  result; the map stores it in float32.
- pose_masks, affine_transforms: pose-gan pose_transform.py:125-166 and :193-265, as transcribed per pair by
  dgan_tf.geometry.reference, with the even-odd crossing rule of the scikit-image 0.13 the original ran
  (grid_points_in_poly_crossing). No integer division applies there.
"""

import numpy as np

from dgan_tf.geometry import reference


def cords_to_map(cords, img_size, sigma=6):
    """(18, 2) integer (y, x) keypoints, -1 missing -> (H, W, 18) float32 staircase heatmaps."""
    cords = np.asarray(cords)
    assert np.issubdtype(cords.dtype, np.integer) and isinstance(sigma, int)
    result = np.zeros(tuple(img_size) + cords.shape[0:1], dtype="float32")
    for i, point in enumerate(cords):
        if point[0] == -1 or point[1] == -1:
            continue
        xx, yy = np.meshgrid(np.arange(img_size[1]), np.arange(img_size[0]))
        result[..., i] = np.exp(-((yy - point[0]) ** 2 + (xx - point[1]) ** 2) // (2 * sigma ** 2))
    return result


def pose_masks(array2, img_size):
    """(18, 2) target keypoints -> (10, H, W) float32 part masks."""
    return reference.part_masks(array2, img_size, points_in_polygon=reference.grid_points_in_poly_crossing)


def affine_transforms(array1, array2):
    """(18, 2) source and target keypoints -> (10, 8) float32 target -> source affines (fed as float32)."""
    return reference.part_affines(array1, array2).astype(np.float32)


def generator_inputs(source_image, source_keypoints, target_keypoints, image_size, warp=True):
    """The original's generator batch for one pair (pose_dataset.py:149-163): [input_img, input_pose, output_img,
    output_pose] (+ [affines, masks] with warp); output_img is only passed through, zeros here."""
    inputs = [source_image[None], cords_to_map(source_keypoints, image_size)[None], np.zeros_like(source_image)[None],
              cords_to_map(target_keypoints, image_size)[None]]
    if warp:
        inputs += [affine_transforms(source_keypoints, target_keypoints)[None],
                   pose_masks(target_keypoints, image_size)[None]]
    return inputs
