"""Registry of datasets (market, fashion, synthetic): image size, on-disk layout and where each CSV is found.

Layout is the original's: `<data_root>/<prefix>-dataset/{train,test}/*.jpg` next to
`<prefix>-annotation-{split}.csv` and `<prefix>-pairs-{split}.csv`. A CSV missing there is also
looked for in the repository's top-level `annotations/` folder (see annotations/README.md).
"""

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from dgan_tf.options import SPLITS

from dgan_tf.images import ImageSize

REPO_ANNOTATIONS_DIR = Path(__file__).resolve().parents[2] / "annotations"

MARKET_HELP = (
    "Market-1501 is research-only and not shipped: download Market-1501-v15.09.15 from its official page "
    "(Zheng et al., ICCV 2015; linked from the Deformable GAN README, github.com/AliaksandrSiarohin/pose-gan), "
    "then run: python scripts/prepare_dataset.py market --source /path/to/Market-1501-v15.09.15 --data-root {root}. "
    "The annotation CSVs (market-annotation-{{train,test}}.csv) are the Deformable GAN / PATN ones; "
    "put them in {root}/ or in the repository's annotations/ folder."
)
FASHION_HELP = (
    "DeepFashion is research-only and not shipped: request the In-shop Clothes Retrieval Benchmark from its "
    "maintainers (mmlab.ie.cuhk.edu.hk/projects/DeepFashion/InShopRetrieval.html) and unzip img.zip (256x256), "
    "get the Deformable GAN or PATN annotation and pair CSVs (fasion-annotation-{{train,test}}.csv, "
    "fasion-pairs-{{train,test}}.csv), then run: python scripts/prepare_dataset.py fashion --source /path/to/img "
    "--annotations-dir /path/to/csvs --data-root {root}."
)
SYNTHETIC_HELP = (
    "The synthetic dataset is generated, not downloaded (dgan_tf.data.synthetic writes it under {root}/)."
)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's images or CSVs are not where the config expects them; the message says how to get them."""


@dataclass(frozen=True)
class DatasetConfig:
    """Everything about one dataset at one image size: where it lives, how pairs are built, its schedule.

    Training, pairs, evaluation and the config defaults read a dataset's facts here only. A new dataset is an
    entry in DATASETS, plus a function in dgan_tf/data/prepare.py (and a name in options.PREPARED_DATASETS) if
    its official download needs laying out; the generator's filters follow the image size, as in the original.
    """

    name: str
    image_size: ImageSize
    data_root: Path
    subdir: str  # "" for market/fashion, e.g. "synthetic-128x64" for synthetic
    file_prefixes: tuple  # spellings of the file prefix, preferred first ("fasion", "fashion")
    fallback_annotations_dir: Path | None  # the repo's annotations/ folder; None for generated data
    how_to_obtain: str
    # Pairs: the person/item id ends at the "first" (pose-gan create_pairs_dataset.py:18 at 8693ec4) or, for the
    # PATN DeepFashion naming, the "last" `_` of a name; names with these prefixes (Market's junk and
    # distractors, create_pairs_dataset.py:12) never enter pairs.
    id_separator: str = "first"
    distractor_prefixes: tuple = ()
    nn_size: int = 3  # n of the n x n nearest-neighbour loss (pose-gan README.md:39, 49 at 8693ec4)
    # The schedule: the published runs trained 90 "epochs" of 1000 iterations, batch 4 (2 for DeepFashion full)
    # (pose-gan README.md:32-51 and pose_dataset.py:57-58 at 8693ec4), but the original's trainer saves its
    # checkpoint at the START of an epoch, every 30th (epochs 29, 59, 89; cmd.py:24), and never after the last
    # (gan/train.py:100-107, submodule a4aa9a3): its last generator, the released one, had 89,000 updates.
    batch_size: int = 4
    full_batch_size: int = 4  # batch size of the `full` variant
    iterations: int = 89_000
    checkpoint_every: int = 1000
    sample_every: int = 1000
    width: float = 1.0  # channel-width multiplier of the networks; 1.0 is the paper's

    def __post_init__(self):
        object.__setattr__(self, "image_size", ImageSize.of(self.image_size))  # frozen: set once, checked

    def batch_size_for(self, variant_name):
        return self.full_batch_size if variant_name == "full" else self.batch_size

    @property
    def data_dir(self):
        """Folder holding `<prefix>-dataset/` and the CSVs."""
        return Path(self.data_root) / self.subdir if self.subdir else Path(self.data_root)

    def _first_existing(self, candidates):
        for path in candidates:
            if path.exists():
                return path
        return candidates[0]

    def images_dir(self, split):
        """`<data_dir>/<prefix>-dataset/<split>`, accepting either prefix spelling."""
        _check_split(split)
        return self._first_existing([self.data_dir / f"{p}-dataset" / split for p in self.file_prefixes])

    def _csv(self, kind, split):
        _check_split(split)
        file_names = [f"{p}-{kind}-{split}.csv" for p in self.file_prefixes]
        folders = [self.data_dir] + ([Path(self.fallback_annotations_dir)] if self.fallback_annotations_dir else [])
        return self._first_existing([folder / name for folder in folders for name in file_names])

    def annotation_csv(self, split):
        """The annotation CSV: next to the data, else in the repo's annotations/ folder (either spelling)."""
        return self._csv("annotation", split)

    def pairs_csv(self, split):
        """The pair CSV: next to the data, else in the repo's annotations/ folder (either spelling)."""
        return self._csv("pairs", split)

    def check_present(self, split):
        """Raise DatasetNotFoundError naming every missing piece of `split` and how to obtain it."""
        _check_split(split)
        missing = []
        images = self.images_dir(split)
        if not images.is_dir():
            missing.append(f"image folder {images}")
        elif not any(images.glob("*.jpg")):
            missing.append(f"images (*.jpg) in {images}")
        annotations = self.annotation_csv(split)
        if not annotations.is_file():
            missing.append(f"annotation file {annotations}")
        pairs = self.pairs_csv(split)
        if not pairs.is_file():
            missing.append(f"pair file {pairs}")
        if not missing:
            return
        layout = (f"{self.data_dir}/{self.file_prefixes[0]}-dataset/{split}/*.jpg, "
                  f"{self.data_dir}/{self.file_prefixes[0]}-annotation-{split}.csv, "
                  f"{self.data_dir}/{self.file_prefixes[0]}-pairs-{split}.csv")
        hint = self.how_to_obtain.format(root=self.data_root)
        if missing == [f"pair file {pairs}"] and self.name != "synthetic":
            hint = (f"Create the pairs with: python scripts/make_pairs.py {annotations} --output {pairs} "
                    f"--dataset {self.name}" + (" --sample 12000 --seed 0" if split == "test" else ""))
        raise DatasetNotFoundError(
            f"Dataset {self.name!r} ({self.image_size}, split {split!r}) is incomplete: "
            f"missing {', '.join(missing)}. Expected layout: {layout}. {hint}"
        )


def _check_split(split):
    if split not in SPLITS:
        raise ValueError(f"Unknown split. Expected one of {SPLITS}. Received: split={split!r}")


# The embedded default is sized for the README's main command: about 10 minutes on a 2-core CPU, with a
# half-width network (1.31 s per iteration at 128x64 against 5.07 s at width 1).
SYNTHETIC_SCHEDULE = dict(iterations=400, checkpoint_every=100, sample_every=50, width=0.5)

# Each dataset's allowed configurations, the default (first) included; data_root is filled in by get_dataset.
DATASETS = {
    "market": (
        DatasetConfig("market", (128, 64), Path("data"), "", ("market",), REPO_ANNOTATIONS_DIR, MARKET_HELP,
                      id_separator="first", distractor_prefixes=("-1", "0000"), nn_size=3),
    ),
    "fashion": (
        # The id ends at the LAST `_`: right for the Def-GAN naming (one `_`) and for the PATN naming,
        # whose categories keep their underscores (`fashionWOMENBlouses_Shirtsid0000337203_3back.jpg`).
        DatasetConfig("fashion", (256, 256), Path("data"), "", ("fasion", "fashion"), REPO_ANNOTATIONS_DIR,
                      FASHION_HELP, id_separator="last", nn_size=5, full_batch_size=2),
    ),
    "synthetic": (
        DatasetConfig("synthetic", (128, 64), Path("data"), "synthetic-128x64", ("synthetic",), None, SYNTHETIC_HELP,
                      nn_size=3, **SYNTHETIC_SCHEDULE),
        DatasetConfig("synthetic", (256, 256), Path("data"), "synthetic-256x256", ("synthetic",), None,
                      SYNTHETIC_HELP, nn_size=5, **SYNTHETIC_SCHEDULE),
    ),
}


def get_dataset(name, data_root="data", image_size=None):
    """The DatasetConfig of `name` at `image_size` (default: the dataset's first size) under `data_root`."""
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset. Expected one of {sorted(DATASETS)}. Received: name={name!r}")
    choices = DATASETS[name]
    if image_size is None:
        config = choices[0]
    else:
        size = ImageSize.of(image_size)
        matches = [c for c in choices if c.image_size == size]
        if not matches:
            allowed = ", ".join(str(c.image_size) for c in choices)
            raise ValueError(f"Dataset {name!r} has no image size {size}. Allowed: {allowed}. "
                             f"Received: image_size={image_size!r}")
        config = matches[0]
    return dataclasses.replace(config, data_root=Path(data_root))
