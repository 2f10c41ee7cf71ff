"""Lay out downloaded Market-1501 / DeepFashion images as the original expects, without resizing.
The original's steps: pose-gan README.md:24-27 and data/split_fasion_dataset.py:18-56 at 8693ec4.

Market-1501: bounding_box_train -> <root>/market-dataset/train, bounding_box_test -> .../test.
DeepFashion In-shop: img/<GENDER>/<Category>/id_XXXXXXXX/NN_K_view.jpg is renamed to one flat name
and placed in train or test according to which annotation file lists it.
"""

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dgan_tf.data.annotations import read_annotations
from dgan_tf.data.datasets import get_dataset
from dgan_tf.options import LINK_MODES, NAMINGS
from dgan_tf.images import ImageReadError, ImageSize, read_image_size

MARKET_FOLDERS = {"train": "bounding_box_train", "test": "bounding_box_test"}
MAX_LISTED = 5


class PrepareError(ValueError):
    """The source folder or its images are not what the prepare step expects; the message says what."""


@dataclass
class PrepareSummary:
    """What a prepare run did: images placed per split, and what it skipped or could not find."""

    placed: dict = field(default_factory=lambda: {"train": 0, "test": 0})
    already_present: int = 0
    unlisted: list = field(default_factory=list)  # source images in no annotation file
    unrecognised: list = field(default_factory=list)  # .jpg files whose path is not DeepFashion's layout
    missing: list = field(default_factory=list)  # annotated names with no source image


def deepfashion_name(path, naming="defgan"):
    """The flat file name of a DeepFashion In-shop image path (`.../WOMEN/Blouses_Shirts/id_00000001/02_1_front.jpg`).

    defgan: `fasionWOMENBlousesShirtsid0000000102_1front.jpg` (the original's split_fasion_dataset.py);
    patn:   `fashionWOMENBlouses_Shirtsid0000000102_1front.jpg` (category keeps its underscores).
    """
    if naming not in NAMINGS:
        raise ValueError(f"Unknown naming. Expected one of {NAMINGS}. Received: naming={naming!r}")
    parts = PurePosixPath(str(path).replace("\\", "/")).parts
    if len(parts) < 4 or "_" not in parts[-1] or not parts[-2].startswith("id_"):
        raise ValueError(f"Not a DeepFashion In-shop image path <GENDER>/<Category>/id_<digits>/<NN>_<K>_<view>.jpg. "
                         f"Received: path={str(path)!r}")
    gender, category, id_folder, file_name = parts[-4:]
    index, *pose = file_name.split("_")
    if naming == "defgan":
        return "fasion" + gender + category.replace("_", "") + id_folder.replace("_", "") + index + "_" + "".join(pose)
    return "fashion" + gender + category + id_folder.replace("_", "") + index + "_" + "".join(pose)


def detect_naming(names):
    """'patn' when the annotated names start with `fashion`, 'defgan' when with `fasion`."""
    prefixes = {"patn" if n.startswith("fashion") else "defgan" if n.startswith("fasion") else None for n in names}
    if len(prefixes) != 1 or None in prefixes:
        raise PrepareError("Cannot tell the naming of the annotation names (expected all to start with 'fasion' "
                           "(Def-GAN) or all with 'fashion' (PATN)); pass naming='defgan' or naming='patn'")
    return prefixes.pop()


def _check_sizes(paths, image_size):
    """Refuse, listing them, images whose header size is not `image_size` (nothing resizes them silently)."""
    image_size = ImageSize.of(image_size)
    try:
        wrong = [(p, s) for p in paths if (s := read_image_size(p)) != image_size]
    except ImageReadError as error:
        raise PrepareError(str(error)) from None
    if wrong:
        shown = "; ".join(f"{p} is {s}" for p, s in wrong[:MAX_LISTED])
        more = f"; and {len(wrong) - MAX_LISTED} more" if len(wrong) > MAX_LISTED else ""
        raise PrepareError(f"{len(wrong)} images are not {image_size} (H x W) and nothing "
                           f"resizes them silently: {shown}{more}")


def place_file(source, destination, mode="copy", skip_same_size=True):
    """Copy, hard-link or symlink `source` to `destination` atomically; False when skipped as already there."""
    if mode not in LINK_MODES:
        raise ValueError(f"Unknown mode. Expected one of {LINK_MODES}. Received: mode={mode!r}")
    source, destination = Path(source), Path(destination)
    if skip_same_size and destination.exists() and destination.stat().st_size == source.stat().st_size:
        return False
    tmp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        if mode == "copy":
            shutil.copyfile(source, tmp)
        elif mode == "hardlink":
            os.link(source, tmp)
        else:
            os.symlink(source.resolve(), tmp)
        os.replace(tmp, destination)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    return True


def prepare_market(source, data_root="data", mode="copy"):
    """bounding_box_train/test of a Market-1501 folder -> <data_root>/market-dataset/train/test; 128x64 checked."""
    source = Path(source)
    data = get_dataset("market", data_root)
    absent = [MARKET_FOLDERS[s] for s in MARKET_FOLDERS if not (source / MARKET_FOLDERS[s]).is_dir()]
    if absent:
        raise PrepareError(f"{source} is not a Market-1501 folder: missing {', '.join(absent)} "
                           f"(expected Market-1501-v15.09.15/bounding_box_train and bounding_box_test)")
    images = {split: sorted((source / folder).glob("*.jpg")) for split, folder in MARKET_FOLDERS.items()}
    for split, paths in images.items():
        if not paths:
            raise PrepareError(f"No .jpg images in {source / MARKET_FOLDERS[split]}")
    _check_sizes(images["train"] + images["test"], data.image_size)  # before anything is written

    summary = PrepareSummary()
    for split, paths in images.items():
        destination = data.data_dir / f"{data.file_prefixes[0]}-dataset" / split
        destination.mkdir(parents=True, exist_ok=True)
        for image in paths:
            if place_file(image, destination / image.name, mode):
                summary.placed[split] += 1
            else:
                summary.already_present += 1
    return summary


def _annotation_file(annotations_dir, split):
    for prefix in ("fasion", "fashion"):
        path = Path(annotations_dir) / f"{prefix}-annotation-{split}.csv"
        if path.is_file():
            return path
    raise PrepareError(f"No fasion-annotation-{split}.csv (or fashion-annotation-{split}.csv) in {annotations_dir}")


def prepare_fashion(source, annotations_dir=None, data_root="data", mode="copy", naming="auto"):
    """DeepFashion In-shop img/ -> <data_root>/fasion-dataset/{train,test} with the flat names the CSVs use.

    Split membership comes from the annotation files (a name in both goes to test, as in the original);
    annotations_dir=None looks where the dataset registry does (next to the data, then annotations/);
    otherwise the fashion CSVs found in annotations_dir are copied next to the data.
    """
    source = Path(source)
    if not source.is_dir():
        raise PrepareError(f"DeepFashion source folder not found: {source} (expected the unzipped In-shop img/ folder)")
    data = get_dataset("fashion", data_root)
    if annotations_dir is None:
        csv_files = {split: data.annotation_csv(split) for split in ("train", "test")}
    else:
        csv_files = {split: _annotation_file(annotations_dir, split) for split in ("train", "test")}
    names = {split: set(read_annotations(path, data.image_size).names) for split, path in csv_files.items()}
    if naming == "auto":
        naming = detect_naming(names["train"] | names["test"])
    elif naming not in NAMINGS:
        raise ValueError(f"Unknown naming. Expected one of {NAMINGS + ('auto',)}. Received: naming={naming!r}")

    summary = PrepareSummary()
    placements = []
    for image in sorted(source.rglob("*.jpg")):
        try:
            name = deepfashion_name(image.relative_to(source), naming)
        except ValueError:
            summary.unrecognised.append(str(image))
            continue
        split = "test" if name in names["test"] else "train" if name in names["train"] else None
        if split is None:
            summary.unlisted.append(str(image))
        else:
            placements.append((image, split, name))
    if not placements:
        raise PrepareError(f"No image under {source} matches a name in {csv_files['train']} or {csv_files['test']} "
                           f"with naming={naming!r} (wrong --source folder, or the other naming?)")
    _check_sizes([p[0] for p in placements], data.image_size)
    found = {name for _, _, name in placements}
    summary.missing = sorted((names["train"] | names["test"]) - found)

    for split in ("train", "test"):
        (data.data_dir / f"{data.file_prefixes[0]}-dataset" / split).mkdir(parents=True, exist_ok=True)
    for image, split, name in placements:
        destination = data.data_dir / f"{data.file_prefixes[0]}-dataset" / split / name
        if place_file(image, destination, mode):
            summary.placed[split] += 1
        else:
            summary.already_present += 1
    if annotations_dir is not None:
        _copy_csvs(annotations_dir, data.data_dir)
    return summary


def _copy_csvs(annotations_dir, data_dir):
    """Copy the fashion annotation/pair CSVs next to the data, keeping their file names."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(annotations_dir).glob("*.csv")):
        if path.name.split("-")[0] in ("fasion", "fashion") and (data_dir / path.name).resolve() != path.resolve():
            place_file(path, data_dir / path.name, "copy", skip_same_size=False)
