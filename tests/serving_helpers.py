"""Shared by the export, transfer and pose tests: a tiny run folder, a standing pose, OpenPose files."""

import json

import numpy as np

# A standing figure in a 128x64 frame, (y, x), all 18 joints.
STANDING_POSE = np.array([
    [15, 32], [28, 32], [30, 22], [48, 20], [64, 19], [30, 42], [48, 44], [64, 45], [66, 26],
    [90, 26], [115, 25], [66, 38], [90, 38], [115, 39], [12, 30], [12, 34], [13, 27], [13, 37],
], dtype=np.float32)


def make_tiny_run(run_dir, image_size=(128, 64), width=0.0625, seed=0):
    """A run folder as train.py leaves it (config.json, generator.keras), with an untrained tiny generator."""
    import keras

    from dgan_tf.config import build_run_config
    from dgan_tf.run import Run
    from dgan_tf.models.generator import build_generator

    keras.utils.set_random_seed(seed)
    config = build_run_config("synthetic", "dsc", image_size=f"{image_size[0]}x{image_size[1]}", width=width,
                              data_root=str(run_dir / "no-data"))
    Run(run_dir).save_config(config)
    generator = build_generator(config.image_size, width=width)
    generator.save(run_dir / "generator.keras")
    return generator


def openpose_document(poses_yx, confidences=None, body25=False):
    """An OpenPose JSON document (a dict) with one person per (18, 2) pose; -1 joints get confidence 0."""
    people = []
    for index, pose in enumerate(poses_yx):
        pose = np.asarray(pose, np.float64)
        score = np.where(np.all(pose >= 0, axis=-1), 0.9 if confidences is None else confidences[index], 0.0)
        triples = np.stack([np.where(score > 0, pose[:, 1], 0), np.where(score > 0, pose[:, 0], 0), score], -1)
        if body25:
            body = np.zeros((25, 3))
            body[[0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]] = triples
            body[8] = [(triples[8, 0] + triples[11, 0]) / 2, (triples[8, 1] + triples[11, 1]) / 2, 0.8]  # MidHip
            body[19:] = [[5.0, 120.0, 0.7]] * 6  # feet
            triples = body
        people.append({"person_id": [-1], "pose_keypoints_2d": triples.ravel().tolist(),
                       "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": []})
    return {"version": 1.3, "people": people}


def write_openpose(path, poses_yx, **kwargs):
    path.write_text(json.dumps(openpose_document(poses_yx, **kwargs)))
    return path
