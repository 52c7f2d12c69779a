# SPDX-License-Identifier: MIT
"""``ensure_index``: turn what a data config points at into an index file, building it if needed.

- ``data_format="h5"``: ``path`` is the index. An existing file is checked against ``dataset``; a
  missing index of a built-in dataset (digits, cifar10, cifar100, fashion_mnist) is built there.
- ``data_format="image_folder"`` or ``"dali"``: ``path`` is a folder of class sub-folders (for
  CIFAR, as in solo-learn, torchvision's download root); its index
  is cached under ``cache_dir`` (default ``./datasets/index_cache``, never the home directory) under
  a name keyed by the folder's absolute path, the split and the seed.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.index.build import build_index
from solo_diversity.index.reader import check_root, open_index

log = logging.getLogger(__name__)

BUILTIN_DATASETS = ("digits", "cifar10", "cifar100", "fashion_mnist")
TORCHVISION_DATASETS = ("cifar10", "cifar100")
FOLDER_FORMATS = ("image_folder", "dali")
DATA_FORMATS = ("h5", *FOLDER_FORMATS)
DEFAULT_CACHE_DIR = Path("datasets") / "index_cache"


def cached_index_path(
    folder: Path, *, dataset: str, split: str, seed: int, cache_dir: Path
) -> Path:
    """Where the index of an image folder is cached: unique per (absolute folder, split, seed)."""
    key = hashlib.sha256(str(folder.resolve()).encode("utf-8")).hexdigest()[:12]
    return cache_dir / f"{dataset}-{split}-seed{seed}-{key}.h5"


def _build_builtin(dataset: str, out: Path, *, split: str, seed: int) -> Path:
    if dataset == "digits":
        return build_index("digits", out, seed=seed, split=split)
    if dataset == "fashion_mnist":
        (out.parent / "raw").mkdir(parents=True, exist_ok=True)  # a download goes there
        return build_index("fashion_mnist", out, seed=seed, split=split, root=out.parent / "raw")
    return build_index(
        "torchvision", out, seed=seed, split=split, name=dataset, root=out.parent / "raw"
    )


def ensure_index(
    dataset: str,
    path: str | Path,
    *,
    split: str,
    seed: int = 0,
    data_format: str = "h5",
    cache_dir: Path | None = None,
) -> Path:
    """Return the index file for a data config entry, building it when it can.

    Args:
        dataset: the config's ``data.dataset``; an existing index must hold this dataset.
        path: the config's ``train_path``/``val_path``: an index file or an image folder.
        split: ``"train"`` or ``"test"``/``"val"``.
        seed: shuffle seed for an index built here (an existing index keeps its own).
        data_format: ``"h5"``, ``"image_folder"`` or ``"dali"``.
        cache_dir: where indexes of image folders go (default ``./datasets/index_cache``).
            Built-in raw downloads (CIFAR archives, Fashion-MNIST IDX) go to ``<index dir>/raw``.

    Returns:
        The index file.

    Raises:
        UserError: unknown format, a missing index of a non-built-in dataset, a dataset mismatch,
            a paths index whose image folder has moved (see :func:`~.reader.check_root`).

    """
    if data_format not in DATA_FORMATS:
        raise UserError(f"unknown data format {data_format!r}; valid: {', '.join(DATA_FORMATS)}")
    target = Path(path).expanduser()
    if data_format == "dali" and target.suffix == ".h5":
        data_format = "h5"  # DALI reads an index just as the torchvision path does
    if data_format in FOLDER_FORMATS:
        return _folder_index(
            dataset, target, data_format, split=split, seed=seed, cache_dir=cache_dir
        )
    if target.is_dir():
        raise UserError(
            f"{target} is a folder; set data.format=image_folder or point at an .h5 index"
        )
    if target.is_file():
        return _existing_index(dataset, target, seed)
    if dataset not in BUILTIN_DATASETS:
        raise UserError(
            f"index {target} does not exist and {dataset!r} is not built in "
            f"({', '.join(BUILTIN_DATASETS)}); "
            "build it with `solo-div index build`"
        )
    log.info("index %s is missing; building %s %s with seed %d", target, dataset, split, seed)
    return _build_builtin(dataset, target, split=split, seed=seed)


def _folder_index(
    dataset: str,
    target: Path,
    data_format: str,
    *,
    split: str,
    seed: int,
    cache_dir: Path | None,
) -> Path:
    """The cached index of image folder ``target``, built (by torchvision or a scan) if absent."""
    if dataset in TORCHVISION_DATASETS:
        target.mkdir(parents=True, exist_ok=True)  # solo-learn: torchvision's download root
    if not target.is_dir():
        raise UserError(
            f"data format {data_format!r} needs an image folder, but {target} is not one"
        )
    cached = cached_index_path(
        target,
        dataset=dataset,
        split=split,
        seed=seed,
        cache_dir=cache_dir or DEFAULT_CACHE_DIR,
    )
    if cached.is_file():
        check_root(open_index(cached, expected_dataset=dataset))
        log.info("using cached index %s of %s (delete it to rebuild)", cached, target)
        return cached
    if dataset in TORCHVISION_DATASETS:
        log.info("indexing torchvision %s from %s into %s", dataset, target, cached)
        return build_index("torchvision", cached, seed=seed, split=split, name=dataset, root=target)
    log.info("indexing image folder %s into %s", target, cached)
    return build_index("folder", cached, seed=seed, dataset=dataset, split=split, root=target)


def _existing_index(dataset: str, target: Path, seed: int) -> Path:
    """Index file ``target`` once it holds ``dataset`` and its image folder is in place.

    Its own shuffle seed is kept: the order is part of the artifact, so a differing ``seed`` is
    only logged.
    """
    index = open_index(target, expected_dataset=dataset)
    check_root(index)
    if index.seed != seed:
        log.info(
            "index %s was shuffled with seed %d (not %d); its order is kept",
            target,
            index.seed,
            seed,
        )
    return target
