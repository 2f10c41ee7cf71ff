"""Training/test pairs as the original built them: every ordered pair of valid images of one identity.
The original: pose-gan create_pairs_dataset.py:9-46 at 8693ec4.

The ordering reproduces the original's (identities in order of first appearance, then
itertools.permutations within each), so a seeded sample matches the original's pandas.sample.
"""

import numpy as np
import pandas as pd

from dgan_tf.data.datasets import get_dataset
from dgan_tf.geometry.keypoints import TORSO_JOINTS

def _rules(dataset):
    """The dataset's id and distractor rules, from the registry (unknown names fail with the choices)."""
    data = get_dataset(dataset)
    return data.id_separator, data.distractor_prefixes


def item_id(name, dataset):
    """The person (market, synthetic) or clothing item (fashion) id encoded in an image name."""
    separator, _ = _rules(dataset)
    if separator == "first":
        return name.split("_", 1)[0]
    return name.rsplit("_", 1)[0]


def valid_image_mask(names, keypoints_yx, dataset):
    """(N,) bool: the four torso joints are present and, for market, the image is not a distractor."""
    _, prefixes = _rules(dataset)
    keypoints_yx = np.asarray(keypoints_yx)  # (N, 18, 2)
    names = list(names)
    if keypoints_yx.ndim != 3 or keypoints_yx.shape[1:] != (18, 2) or len(keypoints_yx) != len(names):
        raise ValueError(f"keypoints_yx must have shape ({len(names)}, 18, 2) to match the names. "
                         f"Received: keypoints_yx.shape={keypoints_yx.shape}")
    torso = keypoints_yx[:, list(TORSO_JOINTS), :]  # (N, 4, 2)
    valid = (torso >= 0).all(axis=(1, 2))  # (N,)
    if prefixes:
        valid &= ~np.array([n.startswith(prefixes) for n in names], dtype=bool)
    return valid


def make_pairs(table, dataset, sample=None, seed=0):
    """DataFrame(from, to) of every ordered pair (A, B), A != B, of valid images with the same id.

    sample=N keeps a random min(N, total) rows without replacement, seeded like the original's
    `DataFrame.sample(n, random_state=seed)` (its test split used N=12000, seed 0).
    """
    _rules(dataset)
    if sample is not None and (isinstance(sample, bool) or not isinstance(sample, (int, np.integer)) or sample < 1):
        raise ValueError(f"sample must be a positive integer or None. Received: sample={sample!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer. Received: seed={seed!r}")

    names = np.asarray(table.names, dtype=object)
    valid = valid_image_mask(table.names, table.keypoints_yx, dataset)
    images = pd.DataFrame({"name": names[valid]})
    images["id"] = [item_id(n, dataset) for n in images["name"]]
    # The original's order: ids by first appearance, images in file order within an id.
    images["group"] = pd.factorize(images["id"])[0]
    images = images.sort_values("group", kind="stable").reset_index(drop=True)
    images["order"] = np.arange(len(images))

    merged = images.merge(images, on="id", suffixes=("_from", "_to"))
    merged = merged[merged["order_from"] != merged["order_to"]]
    merged = merged.sort_values(["order_from", "order_to"], kind="stable")
    pairs = pd.DataFrame({"from": merged["name_from"].to_numpy(), "to": merged["name_to"].to_numpy()})
    if sample is not None:
        pairs = pairs.sample(n=min(int(sample), len(pairs)), replace=False, random_state=int(seed))
        pairs = pairs.reset_index(drop=True)
    return pairs.astype(str)
