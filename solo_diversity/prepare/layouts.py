# SPDX-License-Identifier: MIT
"""Readers of official download layouts: each turns a folder into a :class:`~.tree.Layout`.

One function per dataset, registered in :data:`LAYOUTS` with the line an offline user needs (what
to place where, and where it comes from). A reader only lists files and reads the download's own
label files; it never opens an image. Missing pieces are a one-line :class:`UserError`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from solo_diversity.builders.source.build import imagenet100_wnids
from solo_diversity.errors import UserError
from solo_diversity.index.sources import IMAGE_EXTENSIONS
from solo_diversity.prepare.tree import Layout, find_root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LayoutSpec:
    """How to read one dataset's download and what to tell a user who lacks it.

    Attributes:
        title: the dataset's usual name.
        marker: a path, relative to the layout's top folder, that only that layout has.
        place: what must be placed in ``--from`` (the official file or folder names).
        url: where the official download comes from.
        read: the reader, given the top folder.

    """

    title: str
    marker: str
    place: str
    url: str
    read: Callable[[Path], Layout]

    def missing(self, source: Path) -> UserError:
        """The one line for a ``--from`` that lacks this layout."""
        return UserError(
            f"{self.title} not found in {source}: place {self.place} there (from {self.url})"
        )


def _images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
    )


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise UserError(f"{path} is missing; the download is incomplete")
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _existing(root: Path, names: Iterable[tuple[str, str]]) -> list[tuple[Path, str]]:
    """``(root / relative path, class)`` for each pair; a listed file that is absent is an error."""
    found = []
    for rel, name in names:
        path = root / rel
        if not path.is_file():
            raise UserError(f"{path} is listed by the download's split file but missing")
        found.append((path, name))
    return found


def read_tinyimagenet(root: Path) -> Layout:
    """tiny-imagenet-200: ``train/<wnid>/images/*.JPEG``; val labels from ``val_annotations.txt``.

    The official val folder is flat (``val/images``); its classes are the second column of the
    tab-separated ``val/val_annotations.txt`` (file, wnid, box).
    """
    wnids = _lines(root / "wnids.txt")
    known = set(wnids)
    train = [
        (p, w)
        for w in wnids
        for p in _images(root / "train" / w / "images")
        if (root / "train" / w / "images").is_dir()
    ]
    val = []
    for lineno, line in enumerate(_lines(root / "val" / "val_annotations.txt"), start=1):
        name, wnid = (line.split("\t") + [""])[:2]
        if wnid not in known:
            raise UserError(
                f"{root / 'val' / 'val_annotations.txt'} line {lineno}: class {wnid!r} is not "
                f"in wnids.txt"
            )
        val.append((name, wnid))
    return Layout(sorted(wnids), {"train": train, "val": _existing(root / "val" / "images", val)})


def _class_folders(folder: Path, wnids: list[str]) -> list[tuple[Path, str]]:
    """Images of ``folder/<wnid>/`` for each wnid; a folder with no class sub-folders is refused."""
    if not folder.is_dir():
        raise UserError(f"{folder} is missing; place ImageNet's {folder.name}/ there")
    if not any(p.is_dir() for p in folder.iterdir()):
        raise UserError(
            f"{folder} is flat (no class folders); sort it into <wnid>/ folders first, e.g. "
            "with the devkit's ILSVRC2012_validation_ground_truth.txt"
        )
    absent = [w for w in wnids if not (folder / w).is_dir()]
    if absent:
        raise UserError(
            f"{folder} lacks {len(absent)} of the ImageNet-100 class folders, e.g. {absent[0]}"
        )
    return [(p, w) for w in wnids for p in _images(folder / w)]


def read_imagenet100(root: Path) -> Layout:
    """ImageNet's ``train/<wnid>/`` and ``val/<wnid>/``, kept to CMC's 100 classes."""
    wnids = sorted(imagenet100_wnids())
    return Layout(
        wnids,
        {
            "train": _class_folders(root / "train", wnids),
            "val": _class_folders(root / "val", wnids),
        },
    )


def read_food101(root: Path) -> Layout:
    """food-101: ``images/<class>/<id>.jpg``, split by ``meta/train.txt`` and ``meta/test.txt``.

    Each split file lists ``<class>/<id>`` without the extension; its test split is our val.
    """
    classes = _lines(root / "meta" / "classes.txt")
    splits = {}
    for folder, listed in (("train", "train.txt"), ("val", "test.txt")):
        rows = [(f"{row}.jpg", row.split("/")[0]) for row in _lines(root / "meta" / listed)]
        unknown = next((name for _, name in rows if name not in set(classes)), None)
        if unknown is not None:
            raise UserError(f"{root / 'meta' / listed} names class {unknown!r}, not in classes.txt")
        splits[folder] = _existing(root / "images", rows)
    return Layout(classes, splits)


def _mat(path: Path) -> dict[str, Any]:
    """A MATLAB file's variables (scipy reads the v5 files these datasets ship)."""
    from scipy.io import loadmat

    if not path.is_file():
        raise UserError(f"{path} is missing; the download is incomplete")
    try:
        return dict(loadmat(path, squeeze_me=True))
    except (ValueError, OSError) as err:
        raise UserError(f"{path} is not a readable MATLAB file ({err})") from None


def read_flowers102(root: Path) -> Layout:
    """Flowers-102: ``jpg/image_%05d.jpg``, labels 1..102 in ``imagelabels.mat``, ``setid.mat``.

    Train is the official train plus val ids (``trnid``, ``valid``: 20 images a class), val the
    test ids (``tstid``), the usual linear-probe protocol. Classes are the ids, ``001``..``102``.
    """
    labels = np.atleast_1d(_mat(root / "imagelabels.mat")["labels"]).astype(np.int64)
    ids = _mat(root / "setid.mat")
    classes = [f"{c:03d}" for c in range(1, int(labels.max()) + 1)]

    def rows(*keys: str) -> list[tuple[Path, str]]:
        chosen = np.concatenate([np.atleast_1d(ids[k]).astype(np.int64) for k in keys])
        bad = chosen[(chosen < 1) | (chosen > len(labels))]
        if bad.size:
            raise UserError(f"{root / 'setid.mat'} names image {int(bad[0])}, not in imagelabels")
        named = [(f"image_{i:05d}.jpg", f"{labels[i - 1]:03d}") for i in sorted(chosen.tolist())]
        return _existing(root / "jpg", named)

    return Layout(classes, {"train": rows("trnid", "valid"), "val": rows("tstid")})


def read_oxford_pets(root: Path) -> Layout:
    """Oxford-IIIT Pets: ``images/<Breed>_<n>.jpg``, split by ``annotations/{trainval,test}.txt``.

    Each split line is ``<image> <class id> <species> <breed id>``; the class is the breed, the
    image name without its number. trainval is our train, test our val.
    """
    splits: dict[str, list[tuple[Path, str]]] = {}
    classes: set[str] = set()
    for folder, listed in (("train", "trainval.txt"), ("val", "test.txt")):
        rows = []
        for line in _lines(root / "annotations" / listed):
            if not line.startswith("#"):
                name = line.split()[0]
                rows.append((f"{name}.jpg", name.rsplit("_", 1)[0]))
        classes.update(breed for _, breed in rows)
        splits[folder] = _existing(root / "images", rows)
    return Layout(sorted(classes), splits)


def _folder_name(name: str) -> str:
    """A class name as a folder name: ``/`` (e.g. Cars' "Ram C/V Cargo Van") becomes ``-``."""
    return name.replace("/", "-").strip() or "_"


def read_stanford_cars(root: Path) -> Layout:
    """Stanford Cars as torchvision reads it: ``cars_{train,test}/``, the devkit's ``.mat`` files.

    Names come from ``devkit/cars_meta.mat``; train labels from ``devkit/cars_train_annos.mat``,
    test labels (our val) from ``cars_test_annos_withlabels.mat``; classes are 1-based there.
    """
    names = [_folder_name(str(n)) for n in _mat(root / "devkit" / "cars_meta.mat")["class_names"]]
    sources = {
        "train": (root / "devkit" / "cars_train_annos.mat", root / "cars_train"),
        "val": (root / "cars_test_annos_withlabels.mat", root / "cars_test"),
    }
    splits = {}
    for folder, (annos, images) in sources.items():
        rows = []
        for record in np.atleast_1d(_mat(annos)["annotations"]):
            label = int(record["class"])
            if not 1 <= label <= len(names):
                raise UserError(f"{annos} gives class {label}; cars_meta.mat has {len(names)}")
            rows.append((str(record["fname"]), names[label - 1]))
        splits[folder] = _existing(images, rows)
    return Layout(sorted(set(names)), splits)


def _first_dir(root: Path, names: tuple[str, ...]) -> Path:
    found = next((root / n for n in names if (root / n).is_dir()), None)
    if found is None:
        raise UserError(f"{root} has none of {', '.join(names)}; unpack the images there")
    return found


def read_places365(root: Path) -> Layout:
    """Places365-Standard as torchvision reads it: file lists, ``data_256/`` and ``val_256/``.

    ``categories_places365.txt`` maps ``/a/abbey`` to its id; the lists give ``<image> <id>``.
    The full-size folders (``data_large/``, ``val_large/``) are taken when the 256 px ones are
    absent. A class folder is the category without its letter, ``/`` as ``-``.
    """
    categories = {}
    for line in _lines(root / "categories_places365.txt"):
        category, idx = line.split()
        categories[int(idx)] = _folder_name(category.strip("/").split("/", 1)[-1])
    sources = {
        "train": ("places365_train_standard.txt", ("data_256", "data_large")),
        "val": ("places365_val.txt", ("val_256", "val_large")),
    }
    splits = {}
    for folder, (listed, dirs) in sources.items():
        rows = []
        for line in _lines(root / listed):
            name, idx = line.split()[:2]
            if int(idx) not in categories:
                raise UserError(f"{root / listed} gives class {idx}, not in categories_places365")
            rows.append((name.lstrip("/"), categories[int(idx)]))
        splits[folder] = _existing(_first_dir(root, dirs), rows)
    return Layout(sorted(set(categories.values())), splits)


LAYOUTS: dict[str, LayoutSpec] = {
    "tinyimagenet": LayoutSpec(
        "TinyImageNet",
        "val/val_annotations.txt",
        "tiny-imagenet-200.zip or its unzipped tiny-imagenet-200/ (wnids.txt, train/, val/)",
        "http://cs231n.stanford.edu/tiny-imagenet-200.zip",
        read_tinyimagenet,
    ),
    "imagenet100": LayoutSpec(
        "ImageNet (for ImageNet-100)",
        "train",
        "ImageNet's train/ and val/ folders of <wnid>/ class folders",
        "https://image-net.org/download-images",
        read_imagenet100,
    ),
    "food101": LayoutSpec(
        "Food-101",
        "meta/classes.txt",
        "food-101.tar.gz or its unpacked food-101/ (images/, meta/)",
        "http://data.vision.ee.ethz.ch/cvl/food-101.tar.gz",
        read_food101,
    ),
    "flowers102": LayoutSpec(
        "Flowers-102",
        "setid.mat",
        "jpg/ (102flowers.tgz unpacked), imagelabels.mat and setid.mat",
        "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/",
        read_flowers102,
    ),
    "oxford_pets": LayoutSpec(
        "Oxford-IIIT Pets",
        "annotations/trainval.txt",
        "images.tar.gz and annotations.tar.gz unpacked (images/, annotations/)",
        "https://www.robots.ox.ac.uk/~vgg/data/pets/",
        read_oxford_pets,
    ),
    "stanford_cars": LayoutSpec(
        "Stanford Cars",
        "devkit/cars_meta.mat",
        "stanford_cars/ as torchvision reads it (cars_train/, cars_test/, devkit/, "
        "cars_test_annos_withlabels.mat)",
        "https://pytorch.org/vision/stable/generated/torchvision.datasets.StanfordCars.html",
        read_stanford_cars,
    ),
    "places365": LayoutSpec(
        "Places365",
        "categories_places365.txt",
        "filelist_places365-standard.tar unpacked with data_256/ and val_256/ "
        "(train_256_places365standard.tar, val_256.tar)",
        "http://data.csail.mit.edu/places/places365/",
        read_places365,
    ),
}


def read_layout(name: str, source: Path) -> Layout:
    """Find ``name``'s layout in ``source`` (the folder itself or a sub-folder) and read it."""
    spec = LAYOUTS[name]
    top = find_root(source, spec.marker)
    if top is None:
        raise spec.missing(source)
    log.info("reading %s from %s", spec.title, top)
    return spec.read(top)
