"""Sharded evaluation: each of N machines scores one block of the test pairs and saves what the metrics are computed
from; `merge_shards` puts the blocks back in order and the metrics are computed as a single run computes them.

`test.py --shard K/N` (K from 1) scores block K: the pairs split into N contiguous blocks of whole batches
(--batch-size, which generation, Inception and SSD all use), as even as can be. Every image then goes through each
network in the same batch as in a single run, so it gets the same outputs, and the merged IS, mask-IS, FID, SSIM,
mask-SSIM, DS and PCKh equal a single run's with the same --batch-size (on the same kind of machine and software).
IS splits are taken over the merged predictions in the single run's order, FID over the merged features; the
"train" FID reference set (every training image) is split into blocks the same way.

What a shard saves, in OUT/shard.npz: per image (in order) SSIM, GFLA SSIM, mask-SSIM, the target keypoints, and
when scored the Inception softmax of the generated and masked images and the pool features, the DS person scores,
the estimated keypoints of PCKh, for the method and (--real-data) the real images; its block of FID's reference
features; the pair names; and what the shards must agree on (the number of shards and of pairs, the labels, the
networks, the FID reference, the batch size).
"""

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from dgan_tf.files import atomic_open

SHARD_FILE = "shard.npz"
FORMAT = 1
REFERENCE = "fid_reference"


@dataclasses.dataclass(frozen=True)
class Shard:
    """Shard `index` (from 1) of `count`."""

    index: int
    count: int

    @classmethod
    def parse(cls, text):
        """'K/N' -> Shard(K, N); ValueError naming the flag otherwise."""
        index, sep, count = str(text).partition("/")
        try:
            shard = cls(int(index), int(count)) if sep else None
        except ValueError:
            shard = None
        if shard is None or not 1 <= shard.index <= shard.count:
            raise ValueError(f"--shard expects K/N with 1 <= K <= N (shard K of N, counted from 1, e.g. 1/4 ... 4/4); "
                             f"received {text!r}")
        return shard

    @property
    def name(self):
        return f"shard-{self.index}-of-{self.count}"

    def rows(self, total, unit=1):
        """The slice of `total` items in this shard: contiguous blocks of whole units (batches), as even as can be;
        the last batch of the last non-empty block may be partial, as in a single run."""
        units = -(-total // unit)
        start, stop = (self.index - 1) * units // self.count, self.index * units // self.count
        return slice(min(start * unit, total), min(stop * unit, total))


def _compact(array):
    """float64 arrays whose values are all float32 numbers (network outputs) are stored as float32: lossless."""
    array = np.asarray(array)
    if array.dtype == np.float64 and np.array_equal(array.astype(np.float32).astype(np.float64), array,
                                                    equal_nan=True):
        return array.astype(np.float32)
    return array


def save_shard(out_dir, shard, meta, rows, reference, pair_names):
    """Write OUT/shard.npz atomically: `rows` {label: measure()'s dict}, FID's reference block (or None), the pair
    names of the block and `meta` (what the shards must agree on). Returns the file's path."""
    arrays = {f"row{i}/{key}": _compact(value) for i, values in enumerate(rows.values())
              for key, value in values.items()}
    if reference is not None:
        arrays[REFERENCE] = _compact(reference)
    arrays["pairs"] = np.asarray(pair_names, dtype=str)
    header = dict(meta, format=FORMAT, shard=shard.index, count=shard.count, labels=list(rows),
                  reference=reference is not None)
    arrays["meta"] = np.asarray(json.dumps(header))
    path = Path(out_dir) / SHARD_FILE
    with atomic_open(path) as f:
        np.savez(f, **arrays)
    return path


def load_shard(folder):
    """(meta, {label: {name: array}}, reference block or None, pair names) of a shard's folder (or its file)."""
    folder = Path(folder)
    path = folder if folder.suffix == ".npz" else folder / SHARD_FILE
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
        meta = json.loads(str(arrays.pop("meta")))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ValueError(f"shard format {found}; this dgan_tf reads format {FORMAT}")
        rows = {label: {} for label in meta["labels"]}
        for key, value in arrays.items():
            if key.startswith("row"):
                number, name = key[3:].split("/", 1)
                rows[meta["labels"][int(number)]][name] = value.astype(np.float64) if value.dtype.kind == "f" else value
        reference = arrays[REFERENCE].astype(np.float64) if meta["reference"] else None
        pairs = [str(name) for name in arrays["pairs"]]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: give the folders that test.py --shard K/N wrote") from None
    except (OSError, ValueError, KeyError, IndexError, TypeError, zipfile.BadZipFile) as error:  # truncated, edited
        detail = f"{type(error).__name__}: {error}" if isinstance(error, KeyError) else str(error)
        raise ValueError(f"{path} is not a readable evaluation shard ({detail or type(error).__name__}); write it "
                         "again with test.py --shard K/N") from None
    return meta, rows, reference, pairs


AGREED = ("count", "total", "labels", "title", "notes", "batch_size", "reference", "fid_reference")


def merge_shards(folders):
    """(meta, {label: merged per-image values}, merged reference or None) of every shard of one evaluation, in
    order; ValueError naming the folders when one is missing, given twice, or from another evaluation."""
    loaded = []
    for folder in folders:
        meta, rows, reference, pairs = load_shard(folder)
        loaded.append((meta, rows, reference, pairs, Path(folder)))
    first = loaded[0][0]
    for meta, *_, folder in loaded[1:]:
        differing = [key for key in AGREED if meta.get(key) != first.get(key)]
        if differing:
            raise ValueError(f"{folder} and {loaded[0][-1]} are shards of different evaluations (they differ in "
                             f"{', '.join(differing)}): merge the shards of one test.py command")
    by_index = {}
    for meta, *_, folder in loaded:
        if meta["shard"] in by_index:
            raise ValueError(f"shard {meta['shard']}/{first['count']} is given twice: {by_index[meta['shard']]} and "
                             f"{folder}")
        by_index[meta["shard"]] = folder
    missing = [f"{k}/{first['count']}" for k in range(1, first["count"] + 1) if k not in by_index]
    if missing:
        raise ValueError(f"shard(s) {', '.join(missing)} missing: --merge needs the folders of all "
                         f"{first['count']} shards (given: {', '.join(str(f) for f in by_index.values())})")
    loaded.sort(key=lambda item: item[0]["shard"])
    pairs = [name for *_, names, _ in loaded for name in names]
    if len(pairs) != first["total"]:
        raise ValueError(f"the shards hold {len(pairs)} pairs, not the {first['total']} they were cut from")
    merged = {label: {key: np.concatenate([rows[label][key] for _, rows, *_ in loaded])
                      for key in loaded[0][1][label]} for label in first["labels"]}
    reference = (np.concatenate([reference for _, _, reference, *_ in loaded]) if first["reference"] else None)
    return first, merged, reference


def merge_report(folders, out_dir=None):
    """Merge the shards in `folders` and write metrics.json and metrics.md as a single run writes them, into
    out_dir (default: the folder that holds the first shard's folder). Returns (out_dir, rows, the report's text)."""
    from dgan_tf.evaluation.protocol import check_output_dir, summarize, write_report

    meta, measured, reference = merge_shards(folders)
    out_dir = check_output_dir(out_dir or Path(folders[0]).resolve().parent)
    rows = {label: summarize(values, reference) for label, values in measured.items()}
    notes = meta["notes"] + [f"Merged from {meta['count']} shards (--batch-size {meta['batch_size']})."]
    return out_dir, rows, write_report(out_dir, rows, meta["title"], notes)
