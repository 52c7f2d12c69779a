# SPDX-License-Identifier: MIT
"""CIFAR-100 from its official python pickles, as the embedded indexes its data group reads.

The ``cifar100`` data group reads ``datasets/cifar100/{train,test}.h5`` (PNG bytes, like the
indexes ``ensure_index`` builds through torchvision). The pickles are read here, from
``cifar-100-python.tar.gz`` or its unpacked folder, without torchvision: its reader insists on the
official checksums, which no test copy can have and a re-packed download may not either.
"""

from __future__ import annotations

import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from solo_diversity.errors import UserError
from solo_diversity.index.builtin import encode_png
from solo_diversity.index.writer import IndexMeta, write_index

ARCHIVE = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"
URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
PICKLES = {"train": "train", "test": "test"}  # index split -> pickle name


def _opener(source: Path) -> Callable[[str], Any] | None:
    """A function loading one pickle by name from ``source`` (archive or folder), or ``None``."""
    archive = source if source.is_file() else source / ARCHIVE
    folder = next((p for p in (source / FOLDER, source) if (p / "meta").is_file()), None)
    if folder is not None:
        return lambda name: pickle.loads((folder / name).read_bytes(), encoding="bytes")
    if archive.is_file():

        def from_archive(name: str) -> Any:
            try:
                with tarfile.open(archive) as t:
                    member = t.extractfile(f"{FOLDER}/{name}")
                    assert member is not None, "a CIFAR pickle is a regular file"
                    return pickle.loads(member.read(), encoding="bytes")
            except (KeyError, tarfile.TarError, OSError) as err:
                raise UserError(f"{archive} has no readable {FOLDER}/{name} ({err})") from None

        return from_archive
    return None


def _images(batch: dict[bytes, Any]) -> np.ndarray:
    """(N, 32, 32, 3) uint8 images from a pickle's (N, 3072) channel-planar rows."""
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def prepare_cifar100(source: Path, out: Path, *, seed: int) -> dict[str, Path]:
    """Write ``out/train.h5`` and ``out/test.h5`` from the official CIFAR-100 python pickles.

    Args:
        source: ``cifar-100-python.tar.gz``, its folder, or the unpacked ``cifar-100-python/``.
        out: the data group's folder, e.g. ``datasets/cifar100``.
        seed: the shuffle seed of both indexes.

    Returns:
        ``{"train": out/train.h5, "test": out/test.h5}``.

    """
    load = _opener(source)
    if load is None:
        raise UserError(
            f"CIFAR-100 not found in {source}: place {ARCHIVE} (or its unpacked {FOLDER}/) "
            f"there (from {URL})"
        )
    for name in PICKLES:
        if (out / f"{name}.h5").exists():
            raise UserError(f"{out / name}.h5 already exists; remove it to prepare CIFAR-100 again")
    classes = [n.decode() for n in load("meta")[b"fine_label_names"]]
    written = {}
    for split, name in PICKLES.items():
        batch = load(name)
        labels = np.asarray(batch[b"fine_labels"], dtype=np.int64)
        entries = ((encode_png(img), int(c)) for img, c in zip(_images(batch), labels, strict=True))
        meta = IndexMeta(
            dataset="cifar100",
            split=split,
            kind="bytes",
            root="",
            seed=seed,
            source=f"cifar100-python:{source.resolve()}",
            class_names=tuple(classes),
        )
        written[split] = write_index(entries, out / f"{split}.h5", meta)
    return written
