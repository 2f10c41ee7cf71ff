"""Keypoint estimator recall: people found in real photos and in harder variants of them, before and after.

Usage (mediapipe lives in the pose environment):
  bash scripts/with_pose_env.sh python scripts/benchmark.py estimator [--images DIR] [--configs NAME ...]

Photos: ../shared/real_images/walk (68 real 128x64 person crops) unless --images DIR. Each is also made harder:
downscaled to 50% and 35% (bicubic), a tighter crop (10% of the height and 12% of the width off each side: the
person touches the frame), darker (x 0.3), low contrast (0.35 around mid grey), blurred (Gaussian, sigma 1.5) and
mirrored. Twenty photos without a person (flat grey and colours, noise, blurred noise, gradients, stripes) count
the false people each configuration finds.

Configurations:
  c526ced   the estimator before: paddings 0.75, 0.5, 1.0, 0.25, 0 at detection confidence 0.5
  paddings  the paddings of now (1.5 added), no second pass, upside-down fits kept
  default   what estimate_keypoints.py does now: the paddings, then a second pass upscaled and contrast-stretched,
            upside-down fits rejected
  conf0.3   the default with --min-detection-confidence 0.3

Per photo set and configuration: people found, how many with all four torso joints, how many of those upside down
(the neck below the hips' midpoint: "^N"), and for the variants whose geometry is known (downscaled, cropped,
mirrored) PCKh@0.5 of their keypoints, mapped back to the photo, against the default's keypoints on the photo
itself (agreement, not accuracy: there is no ground truth). Time: the median milliseconds per photo of the
unchanged photos.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from dgan_tf.evaluation.pckh import pckh
from dgan_tf.geometry.keypoints import MISSING
from dgan_tf.images import read_image
from dgan_tf.inference import keypoint_estimation as ke

WALK = Path(__file__).resolve().parents[3] / "shared" / "real_images" / "walk"
OLD_PADDINGS = (0.75, 0.5, 1.0, 0.25, 0.0)  # the estimator of c526ced
CONFIGS = {
    "c526ced": dict(paddings=OLD_PADDINGS, second_pass=False, upright=False),
    "paddings": dict(second_pass=False, upright=False),
    "default": dict(),
    "conf0.3": dict(min_detection_confidence=0.3),
}
# COCO-18 left/right pairs: a mirrored photo's right joints are the photo's left ones
MIRRORED_JOINTS = np.arange(18)
for _a, _b in ((2, 5), (3, 6), (4, 7), (8, 11), (9, 12), (10, 13), (14, 15), (16, 17)):
    MIRRORED_JOINTS[[_a, _b]] = [_b, _a]


def _resized(image, factor):
    from PIL import Image

    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BICUBIC))


def _blurred(image, sigma=1.5):
    from PIL import Image, ImageFilter

    return np.asarray(Image.fromarray(image).filter(ImageFilter.GaussianBlur(sigma)))


def _downscaled(factor):
    def make(image):
        small = _resized(image, factor)
        scale = np.array(image.shape[:2], np.float64) / small.shape[:2]
        return small, lambda k: (k + 0.5) * scale - 0.5  # small-image pixels -> photo pixels
    return make


def _tight(image):
    height, width = image.shape[:2]
    top, left = round(0.10 * height), round(0.12 * width)
    return image[top:height - top, left:width - left], lambda k: k + (top, left)


def _mirrored(image):
    width = image.shape[1]
    return image[:, ::-1], lambda k: np.stack([k[MIRRORED_JOINTS, 0], width - 1 - k[MIRRORED_JOINTS, 1]], axis=-1)


def _photometric(change):
    return lambda image: (change(image), None)


VARIANTS = {
    "photos": lambda image: (image, lambda k: k),
    "downscaled 50%": _downscaled(0.5),
    "downscaled 35%": _downscaled(0.35),
    "tighter crop": _tight,
    "darker x0.3": _photometric(lambda image: (image * 0.3).astype(np.uint8)),
    "low contrast": _photometric(lambda image: ((image.astype(np.float64) - 128) * 0.35 + 128).astype(np.uint8)),
    "blurred": _photometric(_blurred),
    "mirrored": _mirrored,
}


def no_person_photos(size=(128, 64), count=20, seed=0):
    """Photos without a person: flat greys and colours, noise, blurred noise, gradients, stripes."""
    rng = np.random.default_rng(seed)
    height, width = size
    photos = []
    for index in range(count):
        kind = index % 5
        if kind == 0:
            photo = np.full((height, width, 3), rng.integers(0, 256, 3), np.uint8)
        elif kind == 1:
            photo = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        elif kind == 2:
            photo = _blurred(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), 3.0)
        elif kind == 3:
            ramp = np.linspace(0, 1, height)[:, None, None] * rng.uniform(0, 255, 3)
            photo = np.broadcast_to(ramp, (height, width, 3)).astype(np.uint8)
        else:
            stripes = (np.arange(width) // rng.integers(2, 9)) % 2
            photo = np.broadcast_to(stripes[None, :, None] * rng.integers(0, 256, 3), (height, width, 3))
        photos.append(np.ascontiguousarray(photo, dtype=np.uint8))
    return photos


def estimate(estimator, images):
    """(N, 18, 2) keypoints (-1 where no person) and the seconds per image."""
    keypoints, seconds = [], []
    for image in images:
        start = time.perf_counter()
        found = estimator.keypoints_yx(image)
        seconds.append(time.perf_counter() - start)
        keypoints.append(np.full((18, 2), MISSING, np.int32) if found is None else found)
    return np.stack(keypoints), seconds


def main(argv):
    parser = argparse.ArgumentParser(prog="benchmark.py estimator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=WALK, help="a folder of person photos (default: the walk)")
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS), default=list(CONFIGS))
    args = parser.parse_args(argv)

    import platform

    import mediapipe

    from _common import machine_description

    print(machine_description())
    print(f"mediapipe {mediapipe.__version__}, Python {platform.python_version()}")
    print(f"command: bash scripts/with_pose_env.sh python scripts/benchmark.py estimator {' '.join(argv)}".rstrip())
    paths = ke.find_images([args.images])
    photos = [read_image(path) for path in paths]
    print(f"{len(photos)} photos from {args.images}, {photos[0].shape[0]}x{photos[0].shape[1]} the first")
    with ke.Estimator() as estimator:
        reference, _ = estimate(estimator, photos)  # the default's keypoints on the photos: the agreement's target
    sets = {name: [make(photo) for photo in photos] for name, make in VARIANTS.items()}
    blanks = no_person_photos(photos[0].shape[:2])

    header = f"{'photos':16s}" + "".join(f"{name:>26s}" for name in args.configs)
    print("\npeople found / with four torso joints / ^upside down / PCKh vs the default on the photos (known geometry)")
    print(header)
    times = {}
    rows = {name: f"{name:16s}" for name in sets}
    rows["no person (20)"] = f"{'no person (20)':16s}"
    for config in args.configs:
        with ke.Estimator(**CONFIGS[config]) as estimator:
            estimator.keypoints_yx(photos[0])  # mediapipe's first call sets its graph up: not timed
            for name, variant in sets.items():
                images = [np.ascontiguousarray(image) for image, _ in variant]
                keypoints, seconds = estimate(estimator, images)
                if name == "photos":
                    times[config] = 1000 * statistics.median(seconds)
                found = int((keypoints != MISSING).any(axis=(1, 2)).sum())
                torso = int((keypoints[:, list(ke.TORSO_JOINTS)] != MISSING).all(axis=(1, 2)).sum())
                torso_rows = keypoints[(keypoints[:, list(ke.TORSO_JOINTS)] != MISSING).all(axis=(1, 2))]
                flipped = int((torso_rows[:, 1, 0] > torso_rows[:, [8, 11], 0].mean(axis=1)).sum())
                cell = f"{found}/{len(images)} {torso} ^{flipped}"
                if variant[0][1] is not None:
                    mapped = np.stack([np.where(k == MISSING, MISSING, np.round(back(k.astype(np.float64))))
                                       for k, (_, back) in zip(keypoints, variant)])
                    cell += f" {pckh(mapped, reference):.3f}"
                rows[name] += f"{cell:>26s}"
            keypoints, _ = estimate(estimator, blanks)
            rows["no person (20)"] += f"{int((keypoints != MISSING).any(axis=(1, 2)).sum()):>26d}"
    print("\n".join(rows.values()))
    print(f"{'ms per photo':16s}" + "".join(f"{times[c]:>26.1f}" for c in args.configs)
          + "  (median, unchanged photos)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
