# SPDX-License-Identifier: MIT
"""``prepare_dataset``: one official download in, the indexes its data group reads out.

CIFAR-100 becomes two embedded indexes (:mod:`.cifar`); every other dataset a class-folder tree
of links plus its cached indexes (:mod:`.tree`), read by the reader :mod:`.layouts` registers.
An archive given as ``--from`` is unpacked into ``<out>/<name>/raw`` first.
"""

from __future__ import annotations

from pathlib import Path

from solo_diversity.errors import UserError
from solo_diversity.prepare.cifar import prepare_cifar100
from solo_diversity.prepare.layouts import LAYOUTS, read_layout
from solo_diversity.prepare.tree import index_tree, is_archive, unpack, write_tree

DATASETS = ("cifar100", *LAYOUTS)
INDEX_CACHE = Path("datasets/.indexes")  # the configs' data.index_cache default (config.py)


def prepare_dataset(
    name: str,
    source: str | Path,
    *,
    out_root: str | Path = "datasets",
    seed: int = 0,
    cache_dir: Path = INDEX_CACHE,
) -> dict[str, Path]:
    """Turn the official download of ``name`` at ``source`` into the indexes its data group reads.

    Args:
        name: a data group with a reader: one of :data:`DATASETS`.
        source: the download: its folder, a folder above it, or its archive.
        out_root: where the data groups look (``datasets``: ``datasets/<name>/...``).
        seed: shuffle seed of the indexes (the configs' ``data.index_seed``).
        cache_dir: the configs' ``data.index_cache``, where a run looks for the indexes.

    Returns:
        The index files, ``{"train": ..., "val"/"test": ...}``.

    """
    if name not in DATASETS:
        raise UserError(f"unknown dataset {name!r} to prepare; valid: {', '.join(DATASETS)}")
    src = Path(source).expanduser()
    if not src.exists():
        raise UserError(f"--from {src} does not exist; give the folder or archive of the download")
    out = Path(out_root) / name
    if name == "cifar100":
        return prepare_cifar100(src, out, seed=seed)
    if is_archive(src):
        src = unpack(src, out / "raw")
    folders = write_tree(read_layout(name, src), out)
    return index_tree(name, folders, seed=seed, cache_dir=cache_dir)
