# SPDX-License-Identifier: MIT
"""Small fakes of official dataset layouts: the real file and folder names, a few 8 px images."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def image(path: Path, shade: int = 0) -> Path:
    """Write an 8x8 JPEG (or PNG, by suffix) of one grey shade at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (shade, shade, shade)).save(path)
    return path


def tinyimagenet(root: Path, wnids: list[str], train_per_class: int, val: dict[str, str]) -> Path:
    """tiny-imagenet-200/ with ``train/<wnid>/images``, a flat ``val/images`` and its annotations.

    Args:
        root: folder to create ``tiny-imagenet-200`` in.
        wnids: the classes (``wnids.txt``).
        train_per_class: training images per class.
        val: val file name -> wnid (``val_annotations.txt``).

    """
    top = root / "tiny-imagenet-200"
    top.mkdir(parents=True)
    (top / "wnids.txt").write_text("\n".join(wnids) + "\n")
    for w in wnids:
        for i in range(train_per_class):
            image(top / "train" / w / "images" / f"{w}_{i}.JPEG", i)
        (top / "train" / w / f"{w}_boxes.txt").write_text("")
    rows = [f"{name}\t{w}\t0\t0\t8\t8" for name, w in val.items()]
    for name in val:
        image(top / "val" / "images" / name)
    (top / "val" / "val_annotations.txt").write_text("\n".join(rows) + "\n")
    return top


def imagenet(root: Path, wnids: list[str], per_class: int, *, flat_val: bool = False) -> Path:
    """ImageNet's ``train/<wnid>/*.JPEG`` and ``val/<wnid>/*.JPEG`` (or a flat ``val/``)."""
    for w in wnids:
        for i in range(per_class):
            image(root / "train" / w / f"{w}_{i}.JPEG")
            if flat_val:
                image(root / "val" / f"ILSVRC2012_val_{w}_{i}.JPEG")
            else:
                image(root / "val" / w / f"ILSVRC2012_val_{w}_{i}.JPEG")
    return root


def cifar100(root: Path, labels: dict[str, list[int]], n_classes: int = 100) -> Path:
    """``cifar-100-python/{meta,train,test}``: pickles of (N, 3072) uint8 rows and fine labels.

    Image ``i`` of a split is the constant shade ``i`` in red, ``2i`` in green, ``3i`` in blue.
    """
    import pickle

    import numpy as np

    top = root / "cifar-100-python"
    top.mkdir(parents=True)
    names = [f"class{c:03d}".encode() for c in range(n_classes)]
    (top / "meta").write_bytes(pickle.dumps({b"fine_label_names": names}))
    for split, fine in labels.items():
        shades = np.arange(len(fine), dtype=np.uint8)[:, None, None]
        planes = np.concatenate([shades, 2 * shades, 3 * shades], axis=1)  # (N, 3, 1)
        data = np.repeat(planes, 1024, axis=2).reshape(len(fine), 3072)
        (top / split).write_bytes(pickle.dumps({b"data": data, b"fine_labels": fine}))
    return top


def food101(root: Path, split: dict[str, dict[str, int]]) -> Path:
    """food-101/ with ``images/<class>/<id>.jpg`` and ``meta/{classes,train,test}.txt``.

    Args:
        root: folder to create ``food-101`` in.
        split: ``{"train": {class: count}, "test": {...}}``; ids run on across splits.

    """
    top = root / "food-101"
    classes = sorted({c for counts in split.values() for c in counts})
    (top / "meta").mkdir(parents=True)
    (top / "meta" / "classes.txt").write_text("\n".join(classes) + "\n")
    next_id = 1000
    for name, counts in split.items():
        rows = []
        for c, n in counts.items():
            for _ in range(n):
                image(top / "images" / c / f"{next_id}.jpg")
                rows.append(f"{c}/{next_id}")
                next_id += 1
        (top / "meta" / f"{name}.txt").write_text("\n".join(rows) + "\n")
    return top


def flowers102(root: Path, labels: list[int], ids: dict[str, list[int]]) -> Path:
    """``jpg/image_%05d.jpg``, ``imagelabels.mat`` (1-based classes) and ``setid.mat`` (ids)."""
    import numpy as np
    from scipy.io import savemat

    root.mkdir(parents=True)
    for i in range(1, len(labels) + 1):
        image(root / "jpg" / f"image_{i:05d}.jpg")
    savemat(root / "imagelabels.mat", {"labels": np.asarray([labels], dtype=np.uint8)})
    savemat(root / "setid.mat", {k: np.asarray([v], dtype=np.uint16) for k, v in ids.items()})
    return root


def oxford_pets(root: Path, split: dict[str, list[str]]) -> Path:
    """``images/<name>.jpg`` and ``annotations/{trainval,test}.txt`` (``name id species breed``)."""
    top = root / "oxford-iiit-pet"
    breeds = sorted({n.rsplit("_", 1)[0] for names in split.values() for n in names}, key=str.lower)
    (top / "annotations").mkdir(parents=True)
    for listed, names in split.items():
        rows = []
        for name in names:
            breed = name.rsplit("_", 1)[0]
            species = 1 if breed[0].isupper() else 2  # the dataset's convention: cats capitalised
            rows.append(f"{name} {breeds.index(breed) + 1} {species} 1")
            image(top / "images" / f"{name}.jpg")
        (top / "annotations" / f"{listed}.txt").write_text("\n".join(rows) + "\n")
    return top


def stanford_cars(root: Path, names: list[str], split: dict[str, list[int]]) -> Path:
    """stanford_cars/ with ``cars_{train,test}/``, ``devkit/cars_{meta,train_annos}.mat`` and
    ``cars_test_annos_withlabels.mat`` (struct arrays with ``fname`` and 1-based ``class``)."""
    import numpy as np
    from scipy.io import savemat

    top = root / "stanford_cars"
    (top / "devkit").mkdir(parents=True)
    savemat(top / "devkit" / "cars_meta.mat", {"class_names": np.array([names], dtype=object)})
    annos = {
        "train": top / "devkit" / "cars_train_annos.mat",
        "test": top / "cars_test_annos_withlabels.mat",
    }
    for name, classes in split.items():
        records = np.zeros((1, len(classes)), dtype=[("fname", object), ("class", object)])
        for i, c in enumerate(classes):
            records[0, i] = (f"{i + 1:05d}.jpg", np.uint8(c))
            image(top / f"cars_{name}" / f"{i + 1:05d}.jpg")
        savemat(annos[name], {"annotations": records})
    return top


def places365(root: Path, categories: list[str], train: list[int], val: list[int]) -> Path:
    """Places365-Standard: ``categories_places365.txt``, the two file lists, ``data_256/`` and
    ``val_256/`` (train images under their category path, val images flat)."""
    root.mkdir(parents=True)
    (root / "categories_places365.txt").write_text(
        "".join(f"{c} {i}\n" for i, c in enumerate(categories))
    )
    rows = []
    for n, c in enumerate(train):
        rows.append(f"{categories[c]}/{n:08d}.jpg {c}")
        image(root / "data_256" / categories[c].lstrip("/") / f"{n:08d}.jpg")
    (root / "places365_train_standard.txt").write_text("\n".join(rows) + "\n")
    rows = []
    for n, c in enumerate(val, start=1):
        rows.append(f"Places365_val_{n:08d}.jpg {c}")
        image(root / "val_256" / f"Places365_val_{n:08d}.jpg")
    (root / "places365_val.txt").write_text("\n".join(rows) + "\n")
    return root
